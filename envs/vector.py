"""The vector interface of the AutoML env: a batch of pipelines in, rewards and records out.

Learners ask for a batch of joint actions and the env evaluates them together through its
evaluator (in-process, a process pool or Ray, whatever executor the evaluator uses):

* :class:`VectorAutoML` wraps a parallel env (``ma2ml.envs.automl_v0``): ``step(batch)``
  calls ``env.evaluate_batch(batch)`` once and returns ``(rewards, records)`` with
  ``rewards[i] = env.reward(records[i])``. Every learner's ``learn`` loop goes through it.

The Stable-Baselines3 ``VecEnv`` over the same batches is :class:`ma2ml.baselines.vec_env.AutoMLVecEnv`
(it lives with the SB3 learners, so importing the envs never loads SB3).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import Actions, EvalRecord

Evaluate = Callable[[list[dict[str, np.ndarray]]], tuple[np.ndarray, list[dict[str, Any]]]]
"""A batch of joint actions -> (rewards, one info dict each)."""


class VectorAutoML:
    """Batched evaluation of a parallel AutoML env (see the module docstring)."""

    def __init__(self, env: AutoMLEnv) -> None:
        self.env = env

    def step(self, batch: Sequence[Actions]) -> tuple[np.ndarray, list[EvalRecord]]:
        """Evaluate ``batch`` (one ``evaluate_batch`` call); (rewards float64 (n,), records)."""
        if isinstance(batch, (str, bytes, Mapping)) or not isinstance(batch, Iterable):
            raise UserError(f"step: batch must be a list of joint actions (agent -> tokens dicts), got "
                            f"{type(batch).__name__}" + ("; wrap one joint action in a list" * isinstance(batch, Mapping)))
        records = self.env.evaluate_batch(list(batch))
        return np.array([self.env.reward(r) for r in records], dtype=np.float64), records

    def evaluate(self, batch: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """:meth:`step` in the :data:`Evaluate` form (infos in the env's shape, :meth:`EvalRecord.info`)."""
        rewards, records = self.step(batch)
        return rewards, [r.info(x) for r, x in zip(records, rewards, strict=True)]
