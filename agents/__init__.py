"""The MA2ML family (MA2ML, MA2ML-Lite, MA2ML on-policy) and the :class:`Learner` interface every learner
implements. Learners are made by name through the registry, :mod:`ma2ml.learners`:

    from ma2ml.learners import make_learner
    learner = make_learner("ma2ml", env, seed=0, kl_coef=0.05)

The names below load on first use (importing this package loads no torch).
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Learner": "ma2ml.agents.base",
    "LearnerConfig": "ma2ml.agents.base",
    "Batch": "ma2ml.agents.base",
    "MA2ML": "ma2ml.agents.ma2ml",
    "MA2MLConfig": "ma2ml.agents.ma2ml",
    "MA2MLOnPolicyConfig": "ma2ml.agents.ma2ml",
    "MA2MLLiteConfig": "ma2ml.agents.ma2ml",
}
"""Public names and their modules."""

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
