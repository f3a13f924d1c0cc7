"""``ma2ml/AutoML-DigitsBench-v0`` and ``ma2ml/JointAutoML-DigitsBench-v0``: the AutoML env
answering from the digits benchmark table (:mod:`ma2ml.bench`). Arguments: those
of :mod:`ma2ml.envs.automl_v0` plus ``table`` (a table file), ``table_seed`` (``"random"``
or a replicate) and ``epoch`` (the fidelity).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

from ma2ml.envs import automl_v0
from ma2ml.envs.automl_v0 import AutoMLParallelEnv
from ma2ml.envs.core.errors import UserError
from ma2ml.bench.table import DIGITS_BENCH, BenchSpec, TableEvaluator
from ma2ml.envs.joint import JointAutoMLEnv


def table_evaluator(table: str | Path | None, table_seed: int | str, epoch: int | None,
                    bench: BenchSpec) -> TableEvaluator:
    """The :class:`TableEvaluator` of the table env's arguments; one ``UserError`` for an argument of the
    wrong type (a bool is not a replicate or an epoch; ``bench`` is a :class:`BenchSpec`)."""
    if not isinstance(bench, BenchSpec):
        raise UserError(f"bench = {bench!r} is invalid; valid values are BenchSpec objects "
                        "(ma2ml.bench.table.DIGITS_BENCH, the hard tier's HARD_BENCH)")
    if table is not None and not isinstance(table, (str, Path)):
        raise UserError(f"table = {table!r} is invalid; valid values are None (the packaged table) or a file path")
    for name, value in (("table_seed", table_seed), ("epoch", epoch)):
        if isinstance(value, (bool, np.bool_)):
            raise UserError(f"{name} = {value!r} is invalid; a bool is not a replicate or an epoch (see the "
                            "valid values in ma2ml.envs.digitsbench_v0)")
    return TableEvaluator(table, replicate=table_seed, epoch=epoch, bench=bench)


# -- registered envs ------------------------------------------------------------------------------
def parallel_env(table: str | Path | None = None, table_seed: int | str = "random", epoch: int | None = None,
                 bench: BenchSpec = DIGITS_BENCH, **kwargs: Any) -> AutoMLParallelEnv:
    """``ma2ml/AutoML-DigitsBench-v0``: the AutoML env answering from the table of ``bench`` (kwargs as
    automl_v0's)."""
    return automl_v0.parallel_env(evaluator=table_evaluator(table, table_seed, epoch, bench), **kwargs)


def raw_env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's order-enforcing wrapper."""
    return OrderEnforcingWrapper(raw_env(**kwargs))


def joint_env(table: str | Path | None = None, table_seed: int | str = "random", epoch: int | None = None,
              bench: BenchSpec = DIGITS_BENCH, **kwargs: Any) -> JointAutoMLEnv:
    """``ma2ml/JointAutoML-DigitsBench-v0``: the single-agent joint view of the table env."""
    return JointAutoMLEnv(evaluator=table_evaluator(table, table_seed, epoch, bench), **kwargs)
