"""``ma2ml/AutoML-DigitsHard-v0`` and ``ma2ml/JointAutoML-DigitsHard-v0``: the AutoML env
answering from the hard tier's table (:mod:`ma2ml.bench.hard.tables`), where the agents
must coordinate: NAS sets the cost of an epoch, HPO the number of epochs, and the reward charges
their product against a training budget.

Arguments: those of :mod:`ma2ml.envs.digitsbench_v0` (``table``, ``table_seed``: ``"random"`` or a
replicate 0..9, ``epoch``: the fidelity 1..16) and of :mod:`ma2ml.envs.automl_v0`, whose reward
defaults here are the tier's: C = 118,944 FLOPs (w = -0.07), training budget B = 691,776
FLOPs x epochs with v = -3 (:data:`~ma2ml.bench.hard.tables.HARD_REWARD_ARGS`).
Pass ``budget_exponent=0.0`` for the poster's reward on the same table.
"""
from __future__ import annotations

from typing import Any

from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

from ma2ml.envs import digitsbench_v0
from ma2ml.envs.automl_v0 import AutoMLParallelEnv
from ma2ml.bench.hard.tables import HARD_BENCH, HARD_REWARD_ARGS
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.joint import JointAutoMLEnv


# -- registered envs: the table env of digitsbench_v0 on the hard table, with the tier's reward ---
def parallel_env(**kwargs: Any) -> AutoMLParallelEnv:
    """``ma2ml/AutoML-DigitsHard-v0`` (kwargs as digitsbench_v0's and automl_v0's)."""
    return digitsbench_v0.parallel_env(bench=HARD_BENCH, **_hard_kwargs(kwargs))


def _hard_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The tier's reward defaults under ``kwargs``; ``bench`` is the hard tier's and cannot be given."""
    if "bench" in kwargs:
        raise UserError("bench= does not apply to the hard tier's envs: their table is the hard tier's "
                        "(ma2ml/AutoML-DigitsBench-v0 takes bench=)")
    return {**HARD_REWARD_ARGS, **kwargs}


def raw_env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's order-enforcing wrapper."""
    return OrderEnforcingWrapper(raw_env(**kwargs))


def joint_env(**kwargs: Any) -> JointAutoMLEnv:
    """``ma2ml/JointAutoML-DigitsHard-v0``: the single-agent joint view of the hard table env."""
    return digitsbench_v0.joint_env(bench=HARD_BENCH, **_hard_kwargs(kwargs))
