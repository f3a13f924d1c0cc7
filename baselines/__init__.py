"""Single-agent baselines: one controller, SB3 PPO/A2C, random search, regularized evolution."""
