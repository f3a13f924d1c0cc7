"""The statistics of a learner comparison across the tasks of a benchmark suite.

Scores are *normalised scores*, lower is better: 0 is the task's optimum and 1 is random
search's expected true regret at the same budget. A learner's scores are an array
``(tasks, seeds)`` (or ``(tasks, seeds, budget_points)`` for curves); every learner is scored
on the same tasks, in the same order.

- :func:`aggregate`: the interquartile mean (or mean) of all (task, seed) scores with a 95%
  percentile bootstrap interval stratified by task (Agarwal et al. 2021, rliable): each task's
  seeds are resampled with replacement, independently of the other tasks.
- :func:`probability_of_improvement`: P(a better than b), the per-task Mann-Whitney U / (n m)
  averaged over tasks, with the same stratified bootstrap (rliable).
- :func:`average_ranks`, :func:`ranks_over_budget`: average ranks over tasks (carps).
- :func:`friedman`: the Friedman test and the Nemenyi critical difference (Demsar 2006; its diagram
  is :func:`ma2ml.figures.plot_cd_diagram`).
- :func:`replication`: whether two disjoint seed sets rank the learners alike (Spearman).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ma2ml.envs.core.errors import UserError

CONFIDENCE = 0.95
"""Confidence level of every interval."""
STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "iqm": lambda values, axis=-1: stats.trim_mean(values, 0.25, axis=axis),
    "mean": np.mean,
}
"""The aggregate statistics by name; each reduces ``axis`` (the bootstrap calls them vectorized)."""
_PAIRS_PER_BATCH = 10_000_000
"""Upper bound on the seed pairs one bootstrap batch of :func:`probability_of_improvement` compares."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% confidence interval."""

    value: float
    """The point estimate."""
    low: float
    """The interval's lower end."""
    high: float
    """The interval's upper end."""

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _matrix(what: str, values: np.ndarray, axes: tuple[str, ...]) -> np.ndarray:
    """``values`` as a finite float array with one non-empty dimension per name in ``axes``, else a
    :class:`UserError` naming ``what``."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != len(axes) or 0 in arr.shape:
        raise UserError(f"{what} has shape {arr.shape}; expected a non-empty ({', '.join(axes)}) array")
    if not np.isfinite(arr).all():
        raise UserError(f"{what} contains NaN or infinite values; drop or fill them first")
    return arr


def _matrices(scores: Mapping[str, np.ndarray], axes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every learner's array checked by :func:`_matrix`, all on the same number of tasks (the first axis)."""
    if not scores:
        raise UserError("no learners given: expected a mapping learner -> scores")
    arrays = {name: _matrix(f"the scores of {name!r}", values, axes) for name, values in scores.items()}
    tasks = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(tasks.values())) > 1:
        raise UserError(f"the learners are scored on different numbers of tasks: {tasks}")
    return arrays


_SCORES = ("tasks", "seeds")
"""The axes of one learner's scores."""


def iqm(x: np.ndarray) -> float:
    """Interquartile mean of all values (``scipy.stats.trim_mean(x.ravel(), 0.25)``)."""
    return float(stats.trim_mean(np.ravel(np.asarray(x, dtype=float)), 0.25))


def aggregate(scores: Mapping[str, np.ndarray], statistic: str = "iqm", n_resamples: int = 2000,
              seed: int = 0) -> dict[str, Interval]:
    """Each learner's ``statistic`` ("iqm" or "mean") over all its (task, seed) scores, with a 95%
    percentile bootstrap interval stratified by task.

    ``scores`` maps a learner to its ``(tasks, seeds)`` normalised scores (no NaN). The bootstrap
    (``scipy.stats.bootstrap``, one sample per task, ``paired=False``) resamples the seeds of each
    task with replacement, independently, and recomputes the statistic over all of them. With a
    single seed per task there is nothing to resample and the interval is the point.
    """
    if statistic not in STATISTICS:
        raise UserError(f"unknown statistic {statistic!r}; valid values: {', '.join(STATISTICS)}")
    reduce = STATISTICS[statistic]

    def pooled(*rows: np.ndarray, axis: int = -1) -> np.ndarray:
        return reduce(np.concatenate(rows, axis=axis), axis=axis)

    result = {}
    for name, arr in _matrices(scores, _SCORES).items():
        point = float(reduce(arr.ravel()))
        if arr.shape[1] < 2:
            result[name] = Interval(point, point, point)
            continue
        ci = stats.bootstrap(tuple(arr), pooled, paired=False, vectorized=True, confidence_level=CONFIDENCE,
                             n_resamples=n_resamples, method="percentile",
                             random_state=np.random.default_rng(seed)).confidence_interval
        result[name] = Interval(point, float(ci.low), float(ci.high))
    return result


def _p_lower(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(a seed of ``a`` scores lower than one of ``b``) + ½ P(tie) per task (last axis: seeds), i.e. the
    Mann-Whitney U of the negated scores over n m; vectorized over leading axes."""
    u = stats.mannwhitneyu(-a, -b, axis=-1, method="asymptotic").statistic
    return u / (a.shape[-1] * b.shape[-1])


def probability_of_improvement(scores: Mapping[str, np.ndarray], a: str, b: str, n_resamples: int = 2000,
                               seed: int = 0) -> Interval:
    """P(``a`` better than ``b``) as rliable defines it: per task, the probability that a random seed of
    ``a`` has a lower score than a random seed of ``b`` (ties count ½), averaged over tasks.

    The 95% percentile interval comes from a task-stratified bootstrap that resamples each task's seeds
    of both learners independently. With a single seed of either learner the interval is the point.
    """
    missing = [name for name in (a, b) if name not in scores]
    if missing:
        raise UserError(f"unknown learner(s) {missing}; valid values: {', '.join(scores)}")
    arrays = _matrices({a: scores[a], b: scores[b]}, _SCORES)
    x, y = arrays[a], arrays[b]
    tasks = x.shape[0]
    point = float(_p_lower(x, y).mean())
    if min(x.shape[1], y.shape[1]) < 2:
        return Interval(point, point, point)

    def mean_over_tasks(*rows: np.ndarray, axis: int = -1) -> np.ndarray:
        return _p_lower(np.stack(rows[:tasks], axis=-2), np.stack(rows[tasks:], axis=-2)).mean(axis=-1)

    batch = max(1, _PAIRS_PER_BATCH // (tasks * x.shape[1] * y.shape[1]))
    ci = stats.bootstrap((*x, *y), mean_over_tasks, paired=False, vectorized=True, confidence_level=CONFIDENCE,
                         n_resamples=n_resamples, batch=batch, method="percentile",
                         random_state=np.random.default_rng(seed)).confidence_interval
    return Interval(point, float(ci.low), float(ci.high))


def average_ranks(means: np.ndarray) -> np.ndarray:
    """The average rank of each learner over tasks.

    ``means`` is ``(learners, tasks)`` of mean scores, lower better. Each task ranks the learners
    1..k (ties get the average of their ranks, ``scipy.stats.rankdata``); the result is ``(learners,)``.
    """
    arr = _matrix("means", means, ("learners", "tasks"))
    return stats.rankdata(arr, axis=0).mean(axis=1)


def ranks_over_budget(curves: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each learner's average rank at each budget point.

    ``curves`` maps a learner to its ``(tasks, seeds, budget_points)`` normalised scores. At each budget
    point, each task ranks the learners by their mean over seeds (as :func:`average_ranks`); the ranks
    are averaged over tasks. Returns learner -> ``(budget_points,)``.
    """
    arrays = _matrices(curves, ("tasks", "seeds", "budget_points"))
    points = {name: arr.shape[2] for name, arr in arrays.items()}
    if len(set(points.values())) > 1:
        raise UserError(f"learners' curves have different numbers of budget points: {points}")
    means = np.stack([arr.mean(axis=1) for arr in arrays.values()])
    ranks = stats.rankdata(means, axis=0).mean(axis=1)
    return dict(zip(arrays, ranks))


@dataclass(frozen=True)
class Friedman:
    """The Friedman test of k learners over N tasks, with the Nemenyi critical difference (Demsar 2006)."""

    statistic: float
    """Friedman's chi-square statistic (NaN when every task ties all learners)."""
    pvalue: float
    """Its p-value: small when the learners' ranks differ."""
    ranks: dict[str, float]
    """Each learner's average rank over tasks (1 = best), best first."""
    cd: float
    """The Nemenyi critical difference: average ranks that differ by at least ``cd`` differ significantly."""
    alpha: float
    """The significance level of ``pvalue`` and ``cd``."""
    tasks: int
    """The number of tasks N."""

    def cliques(self) -> list[tuple[str, ...]]:
        """The maximal groups of at least two learners whose average ranks differ by less than ``cd``
        (no significant difference inside a group), each sorted by rank, the best group first."""
        names = sorted(self.ranks, key=self.ranks.get)
        rank = np.array([self.ranks[name] for name in names])
        ends = np.searchsorted(rank, rank + self.cd, side="left")
        groups, last_end = [], 0
        for start, end in enumerate(ends):
            if end - start >= 2 and end > last_end:
                groups.append(tuple(names[start:end]))
            last_end = max(last_end, end)
        return groups


def friedman(means: Mapping[str, np.ndarray], alpha: float = 0.05) -> Friedman:
    """The Friedman test of the learners over tasks, their average ranks and the Nemenyi critical difference.

    ``means`` maps a learner to its ``(tasks,)`` mean scores. Needs at least 3 learners and 2 tasks.
    CD = q_alpha sqrt(k (k + 1) / (6 N)) with q_alpha the studentized range quantile over sqrt(2)
    (Demsar 2006).
    """
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be in (0, 1); got {alpha}")
    arrays = _matrices(means, ("tasks",))
    k, n = len(arrays), next(iter(arrays.values())).size
    if k < 3 or n < 2:
        raise UserError(f"the Friedman test needs at least 3 learners and 2 tasks; got {k} learners and {n} tasks")
    matrix = np.stack(list(arrays.values()))
    result = stats.friedmanchisquare(*matrix)
    ranks = dict(zip(arrays, average_ranks(matrix).tolist()))
    q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return Friedman(statistic=float(result.statistic), pvalue=float(result.pvalue),
                    ranks=dict(sorted(ranks.items(), key=lambda item: item[1])),
                    cd=float(q_alpha * math.sqrt(k * (k + 1) / (6 * n))), alpha=alpha, tasks=n)


def replication(scores_a: Mapping[str, np.ndarray],
                scores_b: Mapping[str, np.ndarray]) -> tuple[float, list[str], list[str]]:
    """Whether two disjoint seed sets rank the learners alike.

    ``scores_a`` and ``scores_b`` map the same learners to their ``(tasks, seeds)`` scores on each seed
    set. Each set orders the learners by average rank over tasks (of the per-task mean over seeds, best
    first, ties in input order). Returns (the Spearman correlation of the two average-rank vectors,
    order_a, order_b); the correlation is NaN when either set ties all learners.
    """
    if set(scores_a) != set(scores_b):
        raise UserError(f"the two seed sets score different learners: {sorted(scores_a)} and {sorted(scores_b)}")
    names = list(scores_a)
    ranks = []
    for scores in (scores_a, scores_b):
        arrays = _matrices({name: scores[name] for name in names}, _SCORES)
        ranks.append(average_ranks(np.stack([arr.mean(axis=1) for arr in arrays.values()])))
    orders = [[names[i] for i in np.argsort(r, kind="stable")] for r in ranks]
    return float(stats.spearmanr(ranks[0], ranks[1]).statistic), orders[0], orders[1]
