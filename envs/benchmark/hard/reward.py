"""The hard tier's reward: the poster's accuracy under an inference-FLOPs constraint, times a
training-budget term (budgeted AutoML: a search that must train each candidate within a fixed
compute budget).

    R = Acc * (FLOPs / C) ** w      (w = ``exponent`` above C, MnasNet's hard form; the poster's term)
          * (cost / B) ** v         (v = ``budget_exponent`` above B: the training budget)

``cost`` is the training cost of one evaluation in multiply-adds per training image: forward
FLOPs x epochs (the number of training images, and the factor of about 3 for the backward pass,
are the same for every pipeline of a task, so they are left out of both cost and B). With a
steep v (-3 or steeper) the budget is one a practitioner cannot exceed: a pipeline at twice the
budget keeps 1/8 of its accuracy. v = 0 is the poster's reward. Failed trainings get 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ma2ml.envs.benchmark.hard.candidates import Candidate


@dataclass(frozen=True)
class BudgetReward:
    """Accuracy x inference-FLOPs term x training-budget term (see the module docstring)."""

    constraint: float
    """C: inference multiply-adds of one image."""
    budget: float
    """B: training cost (multiply-adds per training image, forward FLOPs x epochs) one evaluation may use."""
    exponent: float = -0.07
    """w, applied above C (the poster's and MnasNet's hard constraint)."""
    budget_exponent: float = -3.0
    """v, applied above B (0: no training budget)."""

    def __post_init__(self) -> None:
        if not (self.constraint > 0 and self.budget > 0):
            raise ValueError(f"the constraint and the budget must be > 0, got {self.constraint}, {self.budget}")
        if self.exponent > 0 or self.budget_exponent > 0:
            raise ValueError(f"the exponents must be <= 0 (penalties), got {self.exponent}, {self.budget_exponent}")

    def __call__(self, acc: np.ndarray, flops: np.ndarray, epochs: np.ndarray,
                 ok: np.ndarray | bool = True) -> np.ndarray:
        """Rewards of arrays (broadcast): accuracy, forward FLOPs, epochs, and whether the training succeeded."""
        flops = np.asarray(flops, dtype=np.float64)
        cost = flops * np.asarray(epochs, dtype=np.float64)
        inference = np.where(flops > self.constraint, (flops / self.constraint) ** self.exponent, 1.0)
        training = np.where(cost > self.budget, (cost / self.budget) ** self.budget_exponent, 1.0)
        return np.where(ok, np.asarray(acc, dtype=np.float64) * inference * training, 0.0)


def candidate_reward(candidate: Candidate, budget_multiple: float, budget_exponent: float,
                     exponent: float = -0.07) -> BudgetReward:
    """The reward of a candidate space: C = the median forward FLOPs of its pipelines, B =
    ``budget_multiple`` x the median training cost (FLOPs x epochs) of its pipelines."""
    from ma2ml.envs.benchmark.hard.candidates import space_table

    table = space_table(candidate)
    return BudgetReward(constraint=float(np.median(table["flops"])),
                        budget=budget_multiple * float(np.median(table["flops"] * table["epochs"])),
                        exponent=exponent, budget_exponent=budget_exponent)
