"""What a learner needs from an env: :class:`AutoMLEnv`, a small typed protocol.

Learners are built from an env's spaces and state, and they evaluate whole batches: the
ma2ml envs (``automl_v0``, ``digitsbench_v0``, ``imagenet_v0``) implement all of it. A plain
PettingZoo env implements the first three members; its ``step`` is the one-joint-action
path, and ``evaluate_batch``/``reward`` are what a batched search adds.

    def learn(env: AutoMLEnv, ...): ...
    isinstance(env, AutoMLEnv)        # a runtime check of the members' presence
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ma2ml.envs.core.records import Actions, EvalRecord


@runtime_checkable
class AutoMLEnv(Protocol):
    """The env surface learners use (see the module docstring)."""

    possible_agents: list[str]

    def action_space(self, agent: str) -> Any:
        """The agent's ``MultiDiscrete`` token space (its ``nvec`` is the layout)."""

    def state(self) -> np.ndarray:
        """The task descriptor S, for the policies' and the critic's inputs."""

    def evaluate_batch(self, batch: Sequence[Actions]) -> list[EvalRecord]:
        """Evaluate joint actions together (one record each, in batch order)."""

    def reward(self, record: EvalRecord) -> float:
        """The shared reward of a record."""
