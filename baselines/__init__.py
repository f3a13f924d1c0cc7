"""Single-agent baselines: one controller, SB3 PPO/A2C, random search, regularized evolution.

Each is a :class:`ma2ml.agents.Learner` made by name through :func:`ma2ml.agents.make_learner`
(``"reinforce"``, ``"ppo"``, ``"a2c"``, ``"random"``, ``"evolution"``). The classes are
exported here too, imported on first use (so ``import ma2ml.baselines`` loads neither torch
nor Stable-Baselines3):

    from ma2ml.baselines import RandomSearch, AutoMLVecEnv
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ReinforceController": "ma2ml.baselines.reinforce", "ReinforceConfig": "ma2ml.baselines.reinforce",
    "PPO": "ma2ml.baselines.sb3", "PPOConfig": "ma2ml.baselines.sb3",
    "A2C": "ma2ml.baselines.sb3", "A2CConfig": "ma2ml.baselines.sb3",
    "RandomSearch": "ma2ml.baselines.random_search", "RandomSearchConfig": "ma2ml.baselines.random_search",
    "RegularizedEvolution": "ma2ml.baselines.evolution", "EvolutionConfig": "ma2ml.baselines.evolution",
    "AutoMLVecEnv": "ma2ml.baselines.vec_env",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
