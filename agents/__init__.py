"""Learners by name: MA2ML, MA2ML-Lite, MA2ML on-policy and the single-agent baselines.

A registry in Gymnasium's style: each name maps to string entry points of a learner class
and its config dataclass, imported only when that learner is made (importing this package
loads neither torch nor SB3).

    from ma2ml.agents import make_learner, learner_names
    learner = make_learner("ma2ml", env, seed=0, kl_coef=0.05)
    learner.learn(env, budget=64, batch_size=8)

=================  ==================================================  =======================
name               what                                                config
=================  ==================================================  =======================
ma2ml              per-agent policies, critic, replay, KL to rho        MA2MLConfig
ma2ml-onpolicy     the same, critic on the current batch only           MA2MLOnPolicyConfig
ma2ml-lite         per-agent REINFORCE, counterfactual baseline         MA2MLLiteConfig
reinforce          one LSTM controller over all tokens, REINFORCE       ReinforceConfig
ppo                Stable-Baselines3 PPO on the joint view              PPOConfig
a2c                Stable-Baselines3 A2C on the joint view              A2CConfig
random             uniform random search                                RandomSearchConfig
evolution          regularized (aging) evolution                        EvolutionConfig
=================  ==================================================  =======================

Register a learner of your own with :func:`register_learner` (a :class:`Learner` subclass
and its config dataclass, as ``"module:Class"`` strings or the objects themselves).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ma2ml.agents.base import Learner, LearnerConfig
    from ma2ml.envs.core.protocol import AutoMLEnv


@dataclass(frozen=True)
class LearnerSpec:
    """A registered learner."""

    name: str
    """The registry name (``make_learner(name, ...)``)."""
    entry_point: Any
    """The :class:`Learner` subclass, or ``"module:Class"``."""
    config_entry_point: Any
    """Its config dataclass, or ``"module:Class"``."""
    description: str = ""
    """One line for ``ma2ml list``."""


_REGISTRY: dict[str, LearnerSpec] = {}


def register_learner(name: str, entry_point: Any, config_entry_point: Any, description: str = "",
                     *, overwrite: bool = False) -> None:
    """Add a learner to the registry (``ValueError`` if the name is taken and not ``overwrite``)."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"learner {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = LearnerSpec(name, entry_point, config_entry_point, description)


def learner_names() -> list[str]:
    """The registered learner names, in registration order."""
    return list(_REGISTRY)


def learner_spec(name: str) -> LearnerSpec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown learner {name!r}; registered learners are {learner_names()}")
    return _REGISTRY[name]


def _load(entry_point: Any) -> Any:
    if not isinstance(entry_point, str):
        return entry_point
    module, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(module), attr)


def learner_config(name: str, **overrides: Any) -> LearnerConfig:
    """The config of learner ``name`` with ``overrides`` applied (unknown fields: one ``ValueError``)."""
    config_class = _load(learner_spec(name).config_entry_point)
    valid = [f.name for f in fields(config_class)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"learner {name!r} has no setting {unknown}; its settings are {valid}")
    return config_class(**overrides)


def make_learner(name: str, env: AutoMLEnv, seed: int = 0, **overrides: Any) -> Learner:
    """Build learner ``name`` for ``env``'s agents and spaces, its config defaults updated by ``overrides``."""
    config = learner_config(name, **overrides)
    return _load(learner_spec(name).entry_point)(env, config, seed=seed)


register_learner("ma2ml", "ma2ml.agents.ma2ml:MA2ML", "ma2ml.agents.ma2ml:MA2MLConfig",
                 "MA2ML: per-agent LSTM policies, centralized critic, replay, KL to target policies")
register_learner("ma2ml-onpolicy", "ma2ml.agents.ma2ml:MA2ML", "ma2ml.agents.ma2ml:MA2MLOnPolicyConfig",
                 "MA2ML without replay (critic and policies on the current batch)")
register_learner("ma2ml-lite", "ma2ml.agents.ma2ml:MA2ML", "ma2ml.agents.ma2ml:MA2MLLiteConfig",
                 "MA2ML-Lite: per-agent REINFORCE with the counterfactual baseline")
register_learner("reinforce", "ma2ml.baselines.reinforce:ReinforceController",
                 "ma2ml.baselines.reinforce:ReinforceConfig",
                 "one LSTM controller over all modules, REINFORCE with a moving-average baseline")
register_learner("ppo", "ma2ml.baselines.sb3:PPO", "ma2ml.baselines.sb3:PPOConfig",
                 "Stable-Baselines3 PPO on the joint view")
register_learner("a2c", "ma2ml.baselines.sb3:A2C", "ma2ml.baselines.sb3:A2CConfig",
                 "Stable-Baselines3 A2C on the joint view")
register_learner("random", "ma2ml.baselines.random_search:RandomSearch",
                 "ma2ml.baselines.random_search:RandomSearchConfig", "uniform random search")
register_learner("evolution", "ma2ml.baselines.evolution:RegularizedEvolution",
                 "ma2ml.baselines.evolution:EvolutionConfig", "regularized (aging) evolution")

_LAZY = {
    "Learner": "ma2ml.agents.base:Learner",
    "LearnerConfig": "ma2ml.agents.base:LearnerConfig",
    "Batch": "ma2ml.agents.base:Batch",
    "MA2ML": "ma2ml.agents.ma2ml:MA2ML",
    "MA2MLConfig": "ma2ml.agents.ma2ml:MA2MLConfig",
    "MA2MLOnPolicyConfig": "ma2ml.agents.ma2ml:MA2MLOnPolicyConfig",
    "MA2MLLiteConfig": "ma2ml.agents.ma2ml:MA2MLLiteConfig",
    "ReinforceConfig": "ma2ml.baselines.reinforce:ReinforceConfig",
    "PPOConfig": "ma2ml.baselines.sb3:PPOConfig",
    "A2CConfig": "ma2ml.baselines.sb3:A2CConfig",
    "RandomSearchConfig": "ma2ml.baselines.random_search:RandomSearchConfig",
    "EvolutionConfig": "ma2ml.baselines.evolution:EvolutionConfig",
}


__all__ = ["LearnerSpec", "learner_config", "learner_names", "learner_spec", "make_learner", "register_learner",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _load(_LAZY[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
