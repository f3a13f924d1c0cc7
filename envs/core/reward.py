"""The shared reward: accuracy under a FLOPs constraint (MnasNet's form, as in the poster).

R = Acc * (FLOPs / C) ** w, with w = ``exponent`` when FLOPs > C and 0 otherwise (a hard
constraint, MnasNet's default w = -0.07), or w = ``exponent`` on both sides when ``soft``.
FLOPs are multiply-adds. A failed evaluation (any status but ``ok``) gets reward 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FlopsReward:
    constraint: float
    """C, in multiply-adds."""
    exponent: float = -0.07
    """w, applied above the constraint (and below it too when ``soft``)."""
    soft: bool = False
    """Apply w on both sides of the constraint."""

    def __post_init__(self) -> None:
        if not self.constraint > 0:
            raise ValueError(f"flops_constraint must be > 0 (multiply-adds), got {self.constraint}")
        if self.exponent > 0:
            raise ValueError(f"reward_exponent must be <= 0 (a penalty), got {self.exponent}")

    def __call__(self, accuracy: float, flops: float, status: str = "ok") -> float:
        if status != "ok":
            return 0.0
        w = self.exponent if flops > 0 and (self.soft or flops > self.constraint) else 0.0
        return float(accuracy * (flops / self.constraint) ** w)


def batch_rewards(reward_fn: Any, acc: np.ndarray, flops: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """:class:`~ma2ml.envs.core.reward.FlopsReward` applied to arrays (the same formula, vectorized)."""
    flops = np.asarray(flops, dtype=np.float64)
    penalized = (flops > 0) & (reward_fn.soft | (flops > reward_fn.constraint))
    factor = np.where(penalized, (np.maximum(flops, 1.0) / reward_fn.constraint) ** reward_fn.exponent, 1.0)
    return np.where(ok, np.asarray(acc, dtype=np.float64) * factor, 0.0)
