"""Regularized (aging) evolution, Real et al. 2019 (AmoebaNet), over the joint token vector.

The first ``population_size`` joint actions are drawn uniformly at random. After that each
child is made by a tournament: draw ``sample_size`` members of the population uniformly
(with replacement, as in the paper's pseudo-code), take the one with the highest reward
as the parent, and mutate one token chosen uniformly among all agents' tokens to a
different value. Every told evaluation joins the population and the *oldest* member leaves
once there are more than ``population_size`` (aging, not the worst). A batch of ``n`` children
is bred from the population as it stands at ``ask`` time.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ma2ml.envs.core.fields import Annotated, Range
from ma2ml.agents.base import Learner, LearnerConfig
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import EvalRecord


@dataclass
class EvolutionConfig(LearnerConfig):
    """Regularized evolution."""

    population_size: Annotated[int, Range(1, 100_000)] = 20
    """P: members kept (the oldest leaves first); also the number of initial random samples."""
    sample_size: Annotated[int, Range(1, 100_000)] = 5
    """S: tournament size (members drawn to pick a parent)."""

    def validate(self) -> None:
        self._require("sample_size", self.sample_size <= self.population_size, "integers in 1..population_size")


class RegularizedEvolution(Learner):
    """Aging evolution (see the module docstring)."""

    config_class = EvolutionConfig

    def __init__(self, env: AutoMLEnv, config: EvolutionConfig | None = None, seed: int = 0) -> None:
        super().__init__(env, config, seed)
        self.population: deque[tuple[np.ndarray, float]] = deque()
        self.mutable = np.flatnonzero(self.joint_nvec > 1)

    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        rows = [self._random() if self.num_asked + k < self.config.population_size else self._child() for k in range(n)]
        return self.split(np.stack(rows))

    def _random(self) -> np.ndarray:
        return self.rng.integers(0, self.joint_nvec)

    def _child(self) -> np.ndarray:
        if not self.population:
            return self._random()
        picks = self.rng.integers(0, len(self.population), size=self.config.sample_size)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        child = parent.copy()
        if self.mutable.size:
            t = int(self.rng.choice(self.mutable))
            child[t] = (child[t] + self.rng.integers(1, self.joint_nvec[t])) % self.joint_nvec[t]
        return child

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        for row, reward in zip(joint, rewards, strict=True):
            self.population.append((row.copy(), float(reward)))
            if len(self.population) > self.config.population_size:
                self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": [(row.tolist(), r) for row, r in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = deque((np.asarray(row, dtype=np.int64), float(r)) for row, r in state["population"])
