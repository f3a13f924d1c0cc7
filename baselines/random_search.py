"""Random search: every token of every agent drawn uniformly and independently.

The reference every learner must beat: its expected best-so-far after n evaluations is
known in closed form on an enumerable space (the n-sample maximum of the reward list).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ma2ml.agents.base import Learner, LearnerConfig
from ma2ml.envs.core.records import EvalRecord


@dataclass
class RandomSearchConfig(LearnerConfig):
    """Random search has nothing to configure; its only input is the seed."""


class RandomSearch(Learner):
    """Uniform sampling of the joint action space; ``tell`` learns nothing."""

    config_class = RandomSearchConfig

    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        return self.split(self.rng.integers(0, self.joint_nvec, size=(n, len(self.joint_nvec))))

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        return None
