"""Baselines: one controller, SB3 PPO/A2C, random search, regularized evolution, independent per-agent
bandits (the interaction-blind control), Optuna's TPE, and TorchRL's MAPPO/IPPO and QMIX/VDN.

Each is a :class:`ma2ml.agents.Learner` made by name through :func:`ma2ml.learners.make_learner`
(``"reinforce"``, ``"ppo"``, ``"a2c"``, ``"random"``, ``"evolution"``, ``"independent"``, ``"tpe"``, ``"mappo"``,
``"ippo"``). The classes are exported here too, imported on first use (so ``import
ma2ml.baselines`` loads neither torch nor Stable-Baselines3); the classes of optional extras
(Optuna, TorchRL) resolve by name but stay out of ``__all__``, so ``import *`` works without them:

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
    "IndependentBandits": "ma2ml.baselines.independent", "IndependentConfig": "ma2ml.baselines.independent",
    "AutoMLVecEnv": "ma2ml.baselines.vec_env",
}

_OPTIONAL = {
    "TPE": "ma2ml.baselines.optuna_samplers", "TPEConfig": "ma2ml.baselines.optuna_samplers",
    "MarlPPO": "ma2ml.baselines.torchrl_marl", "MAPPOConfig": "ma2ml.baselines.torchrl_marl",
    "IPPOConfig": "ma2ml.baselines.torchrl_marl", "QMix": "ma2ml.baselines.torchrl_qmix",
    "QMixConfig": "ma2ml.baselines.torchrl_qmix", "VDNConfig": "ma2ml.baselines.torchrl_qmix",
}
"""Classes of learners that need an optional extra (optuna, marl)."""

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY or name in _OPTIONAL:
        return getattr(importlib.import_module(_LAZY.get(name) or _OPTIONAL[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
