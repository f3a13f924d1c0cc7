"""``ma2ml/AutoML-DigitsBench-v0`` and ``ma2ml/JointAutoML-DigitsBench-v0``: the AutoML env
answering from the digits benchmark table (:mod:`ma2ml.envs.benchmark`). Arguments: those
of :mod:`ma2ml.envs.automl_v0` plus ``table`` (a table file), ``table_seed`` (``"random"``
or a replicate) and ``epoch`` (the fidelity).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

from ma2ml.envs.automl_v0 import AutoMLParallelEnv
from ma2ml.envs.benchmark.table import DIGITS_BENCH, BenchSpec, TableEvaluator
from ma2ml.envs.joint import JointAutoMLEnv


# -- registered envs ------------------------------------------------------------------------------
def parallel_env(table: str | Path | None = None, table_seed: int | str = "random", epoch: int | None = None,
                 bench: BenchSpec = DIGITS_BENCH, **kwargs: Any) -> AutoMLParallelEnv:
    """``ma2ml/AutoML-DigitsBench-v0``: the AutoML env answering from the table of ``bench`` (kwargs as
    automl_v0's)."""
    return AutoMLParallelEnv(evaluator=TableEvaluator(table, replicate=table_seed, epoch=epoch, bench=bench), **kwargs)


def raw_env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's order-enforcing wrapper."""
    return OrderEnforcingWrapper(raw_env(**kwargs))


def joint_env(table: str | Path | None = None, table_seed: int | str = "random", epoch: int | None = None,
              bench: BenchSpec = DIGITS_BENCH, **kwargs: Any) -> JointAutoMLEnv:
    """``ma2ml/JointAutoML-DigitsBench-v0``: the single-agent joint view of the table env."""
    return JointAutoMLEnv(evaluator=TableEvaluator(table, replicate=table_seed, epoch=epoch, bench=bench), **kwargs)
