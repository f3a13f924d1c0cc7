"""The hard tier's reward: the poster's accuracy under an inference-FLOPs constraint, times a
training-budget term (budgeted AutoML: a search that must train each candidate within a fixed
compute budget). The formula is the env's own, :class:`~ma2ml.envs.core.reward.FlopsReward`
with a ``budget``:

    R = Acc * (FLOPs / C) ** w      (w above C, MnasNet's hard form; the poster's term)
          * (cost / B) ** v         (v above B: the training budget; cost = FLOPs x epochs)

With a steep v (-3 or steeper) the budget is one a practitioner cannot exceed: a pipeline at
twice the budget keeps 1/8 of its accuracy. v = 0 is the poster's reward. Failed trainings get 0.
Applied to arrays with :func:`~ma2ml.envs.core.reward.batch_rewards`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ma2ml.envs.core.reward import FlopsReward

if TYPE_CHECKING:
    from ma2ml.bench.hard.definitions import TableDefinition


def candidate_reward(candidate: TableDefinition, budget_multiple: float, budget_exponent: float,
                     exponent: float = -0.07) -> FlopsReward:
    """The reward of a candidate space: C = the median forward FLOPs of its pipelines, B =
    ``budget_multiple`` x the median training cost (FLOPs x epochs) of its pipelines."""
    from ma2ml.bench.hard.definitions import space_table

    table = space_table(candidate)
    return FlopsReward(constraint=float(np.median(table["flops"])), exponent=exponent,
                       budget=budget_multiple * float(np.median(table["flops"] * table["epochs"])),
                       budget_exponent=budget_exponent)
