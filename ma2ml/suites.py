"""Benchmark suites: named, versioned lists of tasks on the frozen tables, split into ``dev`` and ``test``.

A **task** is a table env under fixed settings (its reward's FLOPs constraint C and exponent w, the
training budget B and exponent v, the epoch fidelity, fixed or drawn replicates) with a budget of
evaluations. A **suite** fixes its tasks in code, under a name that carries its version: a suite's
tasks never change; new tasks make a new suite. ``dev`` tasks are for tuning (defaults, sweeps);
``test`` tasks are reported, and no default may be tuned on them.

    ma2ml bench suites [--suite tables-v0] [--properties]

Tasks of one table share its trainings (the settings change how they are scored, not what was
trained), so their rankings of pipelines are correlated: :func:`rank_correlations` says how much.
:func:`task_properties` describes each task from its table alone: the optimum, random search's expected
true regret at the task's budget (the normaliser of a suite score), the expected random evaluations to
the top 0.1%, and the noise ratio.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ma2ml.envs.core.errors import UserError

DIGITS = "ma2ml/AutoML-DigitsBench-v0"
HARD = "ma2ml/AutoML-DigitsHard-v0"
DIGITS_C = 144_544.0
"""The digits table's FLOPs constraint C (multiply-adds)."""
HARD_C = 118_944.0
"""The hard tier's FLOPs constraint C."""
HARD_B = 691_776.0
"""The hard tier's training budget B (FLOPs x epochs)."""
MNIST = "ma2ml/AutoML-MnistBench-v0"
SHAPES = "ma2ml/AutoML-ShapesBench-v0"
MNIST_C, MNIST_B = 58_700.0, 123_360.0
"""The mnist table's C and B (:data:`ma2ml.bench.hard.tables.SUITE_REWARD_ARGS`; a test checks)."""
SHAPES_C, SHAPES_B = 150_056.0, 315_456.0
"""The shapes table's C and B."""
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class SuiteTask:
    """One task: a registered table env under fixed settings, with a budget of evaluations."""

    name: str
    env: str
    env_args: Mapping[str, Any]
    budget: int
    split: str
    """``"dev"`` (tuning allowed) or ``"test"`` (reported; nothing tuned on it)."""
    what: str
    """What the task varies, in a few words."""

    def make(self) -> Any:
        """The task's env (a PettingZoo parallel env)."""
        from ma2ml.envs import make_parallel

        return make_parallel(self.env, **self.env_args)


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of tasks (see the module docstring)."""

    name: str
    description: str
    tasks: tuple[SuiteTask, ...] = field(default_factory=tuple)

    def split(self, which: str | None = None) -> list[SuiteTask]:
        """The tasks of one split (None: all of them, dev first)."""
        if which is not None and which not in SPLITS:
            raise UserError(f"suite split {which!r} is invalid; valid values are {', '.join(SPLITS)}")
        return [t for t in self.tasks if which is None or t.split == which]


def _task(name: str, env: str, budget: int, split: str, what: str, **env_args: Any) -> SuiteTask:
    return SuiteTask(name, env, env_args, budget, split, what)


DIGITS_REPLICATE0 = _task("digits-replicate0", DIGITS, 100, "dev", "the digits table, fixed replicate", table_seed=0)
HARD_REPLICATE0 = _task("hard-replicate0", HARD, 300, "dev", "the hard tier, fixed replicate", table_seed=0)
HARD_EPOCH8 = _task("hard-epoch8", HARD, 300, "dev", "low fidelity: at most 8 epochs", epoch=8)
V0_TEST = (
    _task("digits-noisy", DIGITS, 100, "test", "the digits table, drawn replicates"),
    _task("digits-soft", DIGITS, 100, "test", "soft FLOPs constraint (rewarded below C too)", table_seed=0,
          soft_constraint=True),
    _task("digits-steep-w", DIGITS, 100, "test", "w = -0.3 (FLOPs weigh more)", table_seed=0, reward_exponent=-0.3),
    _task("hard-default", HARD, 300, "test", "the hard tier as registered (seed noise)"),
    _task("hard-tight-budget", HARD, 300, "test", "training budget B at 50%", training_budget=0.5 * HARD_B),
    _task("hard-strict-c", HARD, 300, "test", "C at 75%", flops_constraint=0.75 * HARD_C),
)
"""The test tasks on the first two tables, the same in every suite version so far."""


TABLES_V0 = Suite(
    "tables-v0",
    "the two frozen digits tables (the digits table, the hard tier) under several reward settings, fidelities "
    "and noise; the new tables (mnist, shapes) join in a later version once frozen",
    (
        DIGITS_REPLICATE0,
        _task("digits-epoch2", DIGITS, 100, "dev", "low fidelity: 2 of 4 epochs", table_seed=0, epoch=2),
        _task("digits-strict-c", DIGITS, 100, "dev", "C at 75%", table_seed=0, flops_constraint=0.75 * DIGITS_C),
        HARD_REPLICATE0,
        _task("hard-no-budget-term", HARD, 300, "dev", "no training-budget term (v = 0)", budget_exponent=0.0),
        HARD_EPOCH8,
        *V0_TEST,
    ),
)
"""Version 0: 6 dev and 6 test tasks on the two frozen tables."""

TABLES_V1 = Suite(
    "tables-v1",
    "the four frozen tables (digits, the hard tier, mnist, shapes) under several reward settings, fidelities and "
    "noise: the suite to compare learners on (report on test; tune on dev)",
    (
        DIGITS_REPLICATE0,
        HARD_REPLICATE0,
        HARD_EPOCH8,
        _task("mnist-replicate0", MNIST, 200, "dev", "the mnist table, fixed replicate", table_seed=0),
        _task("mnist-epoch2", MNIST, 200, "dev", "low fidelity: at most 2 epochs", epoch=2),
        _task("shapes-replicate0", SHAPES, 200, "dev", "the shapes table, fixed replicate", table_seed=0),
        *V0_TEST,
        _task("mnist-default", MNIST, 200, "test", "the mnist table as registered (seed noise)"),
        _task("mnist-no-budget-term", MNIST, 200, "test", "no training-budget term (v = 0)", budget_exponent=0.0),
        _task("mnist-strict-c", MNIST, 200, "test", "C at 75%", flops_constraint=0.75 * MNIST_C),
        _task("shapes-default", SHAPES, 200, "test", "the shapes table as registered (seed noise)"),
        _task("shapes-no-budget-term", SHAPES, 200, "test", "no training-budget term (v = 0)", budget_exponent=0.0),
        _task("shapes-tight-budget", SHAPES, 200, "test", "training budget B at 50%", training_budget=0.5 * SHAPES_B),
    ),
)
"""Version 1: 6 dev and 12 test tasks on the four frozen tables (6 test tasks on the two new ones)."""

SUITES: dict[str, Suite] = {s.name: s for s in (TABLES_V0, TABLES_V1)}


def get_suite(spec: str) -> tuple[Suite, str | None]:
    """``NAME`` or ``NAME:dev`` / ``NAME:test`` -> (the suite, the split or None); one ``UserError`` naming the
    valid suites and splits otherwise."""
    name, _, which = spec.partition(":")
    if name not in SUITES:
        raise UserError(f"unknown suite {name!r}; valid suites are {', '.join(SUITES)}")
    if which and which not in SPLITS:
        raise UserError(f"suite split {which!r} is invalid; valid values are {', '.join(SPLITS)}")
    return SUITES[name], which or None


# -- what each task is like ------------------------------------------------------------------------------
def _observed(env: Any) -> np.ndarray:
    """Each stored training's reward as the task observes it (at its fidelity), ``(N, R)``, NaN where a
    pipeline has fewer trainings; a fixed-replicate task: one column, the replicate it answers with."""
    from ma2ml.bench.table import batch_rewards

    ev = env.evaluator
    joint = ev.layout.all_rows()
    if ev.replicate != "random":
        look = ev.lookup(joint)
        return batch_rewards(env.reward_fn, look.val_acc, look.flops, look.ok, look.epochs)[:, None]
    reps = ev.table.replicates
    out = np.full((len(joint), int(reps.max())), np.nan)
    for r in range(out.shape[1]):
        look = ev.lookup(joint, seeds=np.full(len(joint), r))
        out[:, r] = np.where(r < reps, batch_rewards(env.reward_fn, look.val_acc, look.flops, look.ok, look.epochs),
                             np.nan)
    return out


def random_search_regret(truth: np.ndarray, observed: np.ndarray | None, budget: int,
                         replicates: np.ndarray | None = None, runs: int = 4000, seed: int = 0) -> float:
    """Random search's expected true regret after ``budget`` distinct uniform pipelines, recommending its
    best observed one. Exact where every pipeline's observation is fixed (``observed``): the k-th best
    observed pipeline is the recommendation with probability C(N - k, n - 1) / C(N, n) (ties share their
    probability). Under drawn replicates (``replicates``: each pipeline's stored rewards, NaN-padded) it
    is a seeded Monte Carlo estimate over ``runs`` searches."""
    n_pipelines, n = len(truth), min(budget, len(truth))
    best = float(truth.max())
    if replicates is None:
        from scipy.special import gammaln

        order = np.argsort(-observed, kind="stable")
        k = np.arange(1, n_pipelines + 1)
        rest = n_pipelines - k  # pipelines below the k-th best observed
        with np.errstate(invalid="ignore"):
            logp = (gammaln(rest + 1) - gammaln(n) - gammaln(np.maximum(rest - n + 2, 1))
                    - (gammaln(n_pipelines + 1) - gammaln(n + 1) - gammaln(n_pipelines - n + 1)))
        p = np.where(rest >= n - 1, np.exp(logp), 0.0)
        regret = best - truth[order]
        sorted_obs = observed[order]
        for value in np.unique(sorted_obs[np.r_[False, np.diff(sorted_obs) == 0]]):  # ties share
            tied = sorted_obs == value
            regret[tied] = regret[tied].mean()
        return float((p * regret).sum())
    rng = np.random.default_rng(seed)
    counts = (~np.isnan(replicates)).sum(axis=1)
    total = 0.0
    for _ in range(runs):
        picks = rng.choice(n_pipelines, size=n, replace=False)
        draws = replicates[picks, (rng.random(n) * counts[picks]).astype(int)]
        total += best - float(truth[picks[int(np.argmax(draws))]])
    return total / runs


def task_properties(task: SuiteTask, budgets: Sequence[int] = ()) -> dict[str, Any]:
    """What a task is like, from its table alone (see the module docstring); with ``budgets``, also random
    search's expected true regret at each of them (``random_regret_at``, in their order: a suite comparison's
    normaliser at its anytime points)."""
    env = task.make()
    ev = env.evaluator
    truth = ev.truth(env.reward_fn)
    top_k = max(1, int(round(0.001 * len(truth))))
    seed_rewards = ev.seed_rewards(env.reward_fn)
    noisy = ev.seed_noise()
    observed = _observed(env)
    regrets = {b: random_search_regret(truth, None if noisy else observed[:, 0], b, observed if noisy else None)
               for b in dict.fromkeys([*budgets, task.budget])}
    regret = regrets[task.budget]
    several = (~np.isnan(seed_rewards)).sum(axis=1) >= 2
    spread = float(np.nanstd(seed_rewards[several], axis=1, ddof=1).mean()) if several.any() else 0.0
    top1 = float(truth.max() - np.quantile(truth, 0.99))
    return {"task": task.name, "split": task.split, "pipelines": len(truth), "optimum": float(truth.max()),
            "budget": task.budget, "random_regret": regret,
            "random_evals_to_top": (len(truth) + 1) / (top_k + 1),
            "noise_ratio": spread / top1 if top1 > 0 else math.inf, "noisy": bool(noisy),
            **({"random_regret_at": [regrets[b] for b in budgets]} if budgets else {})}


def rank_correlations(suite: Suite) -> dict[tuple[str, str], float]:
    """Spearman correlation of the ground truth between every two tasks on the same table: how much their
    rankings of pipelines share (they share the table's trainings)."""
    from scipy.stats import spearmanr

    truths = {}
    for task in suite.tasks:
        env = task.make()
        truths[task.name] = (task.env, env.evaluator.truth(env.reward_fn))
    out = {}
    names = list(truths)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if truths[a][0] == truths[b][0]:
                out[a, b] = float(spearmanr(truths[a][1], truths[b][1]).statistic)
    return out
