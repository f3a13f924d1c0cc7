"""Real training: the train evaluator and its training loop."""
