"""The shared reward: accuracy under a FLOPs constraint (MnasNet's form, as in the poster),
optionally under a training budget too (budgeted AutoML).

R = Acc * (FLOPs / C) ** w * (cost / B) ** v

* w = ``exponent`` when FLOPs > C and 0 otherwise (a hard constraint, MnasNet's default
  w = -0.07), or w = ``exponent`` on both sides when ``soft``. FLOPs are multiply-adds of one
  forward pass on one image: the inference cost.
* The training budget, only when ``budget`` B is set: ``cost`` = FLOPs x epochs trained, the
  training cost of one evaluation per training image (the number of training images and the
  factor of about 3 for the backward pass are the same for every pipeline of a task, so they
  are left out of both cost and B); v = ``budget_exponent`` when cost > B and 0 otherwise. A
  steep v (-3: a pipeline at twice the budget keeps 1/8 of its accuracy) is a budget a
  practitioner cannot exceed. Without B (the poster's reward) the term is 1.

A failed evaluation (any status but ``ok``) gets reward 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ma2ml.envs.core.errors import UserError


@dataclass(frozen=True)
class FlopsReward:
    constraint: float
    """C, in multiply-adds."""
    exponent: float = -0.07
    """w, applied above the constraint (and below it too when ``soft``)."""
    soft: bool = False
    """Apply w on both sides of the constraint."""
    budget: float | None = None
    """B: the training budget in multiply-adds x epochs per training image (None: no budget)."""
    budget_exponent: float = 0.0
    """v, applied above the budget."""

    def __post_init__(self) -> None:
        if not self.constraint > 0:
            raise UserError(f"flops_constraint must be > 0 (multiply-adds), got {self.constraint}")
        if self.exponent > 0:
            raise UserError(f"reward_exponent must be <= 0 (a penalty), got {self.exponent}")
        if self.budget is not None and not self.budget > 0:
            raise UserError(f"training_budget must be > 0 (multiply-adds x epochs), got {self.budget}")
        if self.budget_exponent > 0:
            raise UserError(f"budget_exponent must be <= 0 (a penalty), got {self.budget_exponent}")

    def __call__(self, accuracy: float, flops: float, status: str = "ok", epochs: float = 1) -> float:
        """The reward of one evaluation; ``epochs``: how many it trained (only the budget uses it)."""
        if status != "ok":
            return 0.0
        w = self.exponent if flops > 0 and (self.soft or flops > self.constraint) else 0.0
        reward = accuracy * (flops / self.constraint) ** w
        if self.budget is not None and flops * epochs > self.budget:
            reward *= (flops * epochs / self.budget) ** self.budget_exponent
        return float(reward)


def batch_rewards(reward_fn: Any, acc: np.ndarray, flops: np.ndarray, ok: np.ndarray,
                  epochs: np.ndarray | float = 1) -> np.ndarray:
    """:class:`~ma2ml.envs.core.reward.FlopsReward` applied to arrays (the same formula, vectorized;
    the arrays broadcast)."""
    flops = np.asarray(flops, dtype=np.float64)
    penalized = (flops > 0) & (reward_fn.soft | (flops > reward_fn.constraint))
    factor = np.where(penalized, (np.maximum(flops, 1.0) / reward_fn.constraint) ** reward_fn.exponent, 1.0)
    budget = getattr(reward_fn, "budget", None)
    if budget is not None:
        cost = flops * np.asarray(epochs, dtype=np.float64)
        factor = factor * np.where(cost > budget, (np.maximum(cost, 1.0) / budget) ** reward_fn.budget_exponent, 1.0)
    return np.where(ok, np.asarray(acc, dtype=np.float64) * factor, 0.0)
