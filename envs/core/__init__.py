"""Core of the environment: records, the evaluator base, the budget, the reward, the thread policy."""
