"""Independent per-agent bandits: the interaction-blind control.

Each agent runs its own Gaussian Thompson-sampling bandit and never models the others: an arm is the
agent's whole token tuple (every combination of its own tokens) when the agent has at most
``max_arms`` of them, else each of its tokens is a bandit of its own (a factorised agent). Every arm
keeps the count and the sum of the shared rewards it took part in; to propose a joint action each
bandit draws, for every arm, a mean from its posterior

    N((kappa * mu0 + sum) / (kappa + n), sigma^2 / (kappa + n))

(``mu0``: the mean reward told so far, ``sigma``: the standard deviation of all rewards told so far,
``kappa = prior_count``) and plays its best draw; the joint action is the agents' picks side by side.
The shared reward is credited to every agent's pick alike: no credit assignment, no interaction
model. On a task where this learner matches the best learner, the reward decomposes by agent and the
task does not measure coordination (the control of issue 26 and 27). An unplayed arm draws from the
prior, so every arm is tried with probability that falls as the others' evidence grows.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ma2ml.agents.base import Learner, LearnerConfig
from ma2ml.envs.core.fields import Annotated, Range
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import EvalRecord


@dataclass
class IndependentConfig(LearnerConfig):
    """Independent per-agent Thompson sampling."""

    max_arms: Annotated[int, Range(2, 1 << 20)] = 4096
    """An agent with at most this many token tuples is one bandit over its tuples; a larger one is
    factorised into one bandit per token."""
    prior_count: Annotated[float, Range(0.01, 1000.0)] = 1.0
    """kappa: pseudo-observations of the prior mean each arm starts with (larger: slower to trust an arm)."""


class IndependentBandits(Learner):
    """Per-agent (or per-token) Gaussian Thompson sampling (see the module docstring)."""

    config_class = IndependentConfig

    def __init__(self, env: AutoMLEnv, config: IndependentConfig | None = None, seed: int = 0) -> None:
        super().__init__(env, config, seed)
        self.units: list[np.ndarray] = []
        """Each bandit's joint columns: one agent's whole slice, or one of its tokens."""
        for agent in self.agents:
            columns = np.arange(self.layout.size)[self.slices[agent]]
            if math.prod(int(n) for n in self.joint_nvec[columns]) <= self.config.max_arms:
                self.units.append(columns)
            else:
                self.units.extend(np.array([c]) for c in columns)
        self.arms = [math.prod(int(n) for n in self.joint_nvec[cols]) for cols in self.units]
        self.counts = [np.zeros(k) for k in self.arms]
        self.sums = [np.zeros(k) for k in self.arms]
        self.total = self.squares = 0.0
        self.told = 0

    def _arm(self, unit: int, rows: np.ndarray) -> np.ndarray:
        """The arm index of each row for bandit ``unit`` (mixed radix over its columns)."""
        cols = self.units[unit]
        index = np.zeros(len(rows), dtype=np.int64)
        for c in cols:
            index = index * int(self.joint_nvec[c]) + rows[:, c]
        return index

    def _columns(self, unit: int, arms: np.ndarray) -> np.ndarray:
        """The tokens of arm indices ``arms`` for bandit ``unit``, ``(n, len(columns))``."""
        cols = self.units[unit]
        out = np.zeros((len(arms), len(cols)), dtype=np.int64)
        rest = arms.copy()
        for j in range(len(cols) - 1, -1, -1):
            size = int(self.joint_nvec[cols[j]])
            out[:, j], rest = rest % size, rest // size
        return out

    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        mu0 = self.total / self.told if self.told else 0.0
        var = self.squares / self.told - mu0 * mu0 if self.told > 1 else 0.0
        sigma = math.sqrt(max(var, 0.0)) or 1.0  # nothing told yet: a wide prior, uniform play
        kappa = self.config.prior_count
        rows = np.zeros((n, self.layout.size), dtype=np.int64)
        for u, cols in enumerate(self.units):
            mean = (kappa * mu0 + self.sums[u]) / (kappa + self.counts[u])
            sd = sigma / np.sqrt(kappa + self.counts[u])
            draws = mean + sd * self.rng.standard_normal((n, self.arms[u]))
            rows[:, cols] = self._columns(u, np.argmax(draws, axis=1))
        return self.split(rows)

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        for u in range(len(self.units)):
            arms = self._arm(u, joint)
            np.add.at(self.counts[u], arms, 1.0)
            np.add.at(self.sums[u], arms, rewards)
        self.total += float(rewards.sum())
        self.squares += float((rewards ** 2).sum())
        self.told += len(rewards)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "counts": [c.tolist() for c in self.counts],
                "sums": [s.tolist() for s in self.sums], "moments": [self.total, self.squares, self.told]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.counts = [np.asarray(c, dtype=np.float64) for c in state["counts"]]
        self.sums = [np.asarray(s, dtype=np.float64) for s in state["sums"]]
        self.total, self.squares, told = state["moments"]
        self.told = int(told)
