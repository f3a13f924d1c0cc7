"""A synthetic cooperative game with a known optimum and tunable interaction between agents.

The "accuracy" of a joint action is a fixed random function of the tokens: per-token terms
plus pairwise terms between tokens of *different* agents, so the best choice of one agent
depends on the others' (``interaction`` scales the pairwise part). It answers in
microseconds, so conformance tests and learning-sanity tests run on it; when the joint
space is small, :meth:`SyntheticEvaluator.optimum` enumerates it for exact regret.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ma2ml.bench.properties import top_count
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.records import EvalRecord
from ma2ml.envs.spaces import ModuleSpace, TokenSpace
from ma2ml.envs.tasks import Task, get_task


class SyntheticEvaluator(Evaluator):
    """Scores joint actions with a random pairwise-interaction function (see module docstring)."""

    def __init__(
        self,
        task: str | Task = "digits",
        spaces: Mapping[str, ModuleSpace] | None = None,
        game: int = 0,
        interaction: float = 1.0,
        noise: float = 0.0,
        flops: int = 10**6,
    ) -> None:
        spaces = dict(spaces) if spaces is not None else small_spaces()
        super().__init__(get_task(task), spaces)
        rng = np.random.default_rng(game)
        self.noise = noise
        self.flops = flops
        self.layout = JointLayout.of_spaces(spaces)
        self._sizes = [int(n) for n in self.layout.nvec]
        owner = [self.layout.owner(col)[0] for col in range(self.layout.size)]
        self._unary = [rng.normal(0.0, 1.0, n) for n in self._sizes]
        self._pairs = {
            (i, j): interaction * rng.normal(0.0, 1.5, (self._sizes[i], self._sizes[j]))
            for i, j in itertools.combinations(range(len(self._sizes)), 2)
            if owner[i] != owner[j]
        }
        scale = sum(np.abs(u).max() for u in self._unary) + sum(np.abs(p).max() for p in self._pairs.values())
        self._scale = float(scale)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "noise": self.noise}

    def seed_noise(self) -> bool:
        return bool(self.noise)

    def data_facts(self) -> tuple[tuple[int, int, int], int, int]:
        return (1, 8, 8), 1000, 10

    def score(self, flat: Sequence[int]) -> float:
        """Noise-free accuracy in [0, 1] of a flat joint token vector."""
        s = sum(u[t] for u, t in zip(self._unary, flat))
        s += sum(p[flat[i], flat[j]] for (i, j), p in self._pairs.items())
        return 0.5 + 0.5 * s / self._scale

    def _flat(self, configs: Mapping[str, Any]) -> list[int]:
        return self.layout.join({a: self.spaces[a].encode(c) for a, c in configs.items()}).tolist()

    def _evaluate(self, configs: Mapping[str, Any], seed: int) -> EvalRecord:
        acc = self.score(self._flat(configs))
        if self.noise:
            acc = float(np.clip(acc + np.random.default_rng(seed).normal(0.0, self.noise), 0.0, 1.0))
        return EvalRecord(status="ok", val_acc=acc, test_acc=acc, flops=self.flops, params=0, curve=[acc])

    def reference(self, reward_fn: Any) -> tuple[float, float]:
        """(optimal reward, top-1% reward threshold) under ``reward_fn``, by enumeration."""
        scores = np.sort([self.score(flat) for flat in itertools.product(*(range(n) for n in self._sizes))])[::-1]
        top1 = scores[top_count(len(scores)) - 1]
        return reward_fn(float(scores[0]), self.flops), reward_fn(float(top1), self.flops)

    def optimum(self) -> tuple[float, dict[str, np.ndarray]]:
        """(best noise-free accuracy, its joint action), by enumeration (joint space <= 1e6)."""
        total = int(np.prod(self._sizes))
        if total > 10**6:
            raise UserError(f"the joint space has {total} actions; optimum() enumerates at most 1e6")
        best, arg = -np.inf, None
        for flat in itertools.product(*(range(n) for n in self._sizes)):
            v = self.score(flat)
            if v > best:
                best, arg = v, flat
        return float(best), self.layout.split(np.array(arg, dtype=np.int64))


def small_spaces(tokens: int = 2, size: int = 4, agents: Sequence[str] = ("aug", "nas", "hpo")) -> dict[str, TokenSpace]:
    """Three agents of ``tokens`` tokens with ``size`` choices each (4,096 joint actions by default)."""
    return {a: TokenSpace([size] * tokens, kind=a) for a in agents}
