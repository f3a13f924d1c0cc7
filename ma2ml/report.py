"""Comparing learners over seeds: the protocol, the tables and what ``ma2ml compare`` writes
(statistics in :mod:`ma2ml.stats`, figures in :mod:`ma2ml.figures`).

Input: :class:`Run` s (one learner, one seed: the reward of every evaluation in order, its
batch, and where recorded its pipeline, its training seconds and its ground-truth reward).
:func:`compare_runs` turns them into a :class:`Comparison` and :func:`write_report` writes it:

* ``summary.md``: distinct pipelines per run; the best observed reward at the full budget
  (mean and 95% bootstrap CI, IQM, evaluations to reach the top 1%); **anytime** tables: the
  simple regret (or, with no known optimum, the best observed reward) and the **true regret of
  the recommendation** at every budget point, with the area under each curve; the rliable
  statistics of one score (mean and IQM with bootstrap CIs, probability of improvement between
  every pair, Agarwal et al. 2021); a power table. It holds no wall-clock figure, so a
  comparison rerun on CPU reproduces it byte for byte (wall times go to ``wall_seconds.json``).
* figures: ``regret.png`` (or ``best_so_far.png``), the poster's ``top<k>.png`` and
  ``batch_scatter.png``, ``anytime.png`` (the tabulated metrics vs budget, log x),
  ``performance_profile.png`` and, where every run recorded its training seconds,
  ``best_so_far_seconds.png`` (best so far vs cumulative training seconds);
* ``per_run.json``: every run's recommendation, its scores at each budget point, distinct
  pipelines; ``marl_eval.json``: marl-eval's raw layout, one step per budget point.

The protocol, in one place:

* a run's **recommendation** after n evaluations is its best observed pipeline among the
  first n (the highest reward; ties: the earliest);
* on envs that know their ground truth (the benchmark table's seed-averaged rewards) the
  **score** is the true regret of the recommendation at the full budget, best truth minus the
  recommendation's truth (lower is better), so a lucky noisy entry does not count as found;
  elsewhere the score is the best observed reward (higher is better);
* intervals are 95% percentile bootstraps over runs with a fixed seed (rliable's stratified
  bootstrap: with one task the strata are the runs);
* the best learner by mean score gets a star only when its interval overlaps no other
  learner's;
* the power table assumes paired seeds (the same seed list for every learner, as ``ma2ml
  compare`` runs them) and falls back to a two-sample estimate otherwise.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.agents.base import pick_recommendation
from ma2ml.envs.core.errors import UserError
from ma2ml.figures import (by_learner, plot_anytime, plot_batch_scatter, plot_best_so_far, plot_best_so_far_seconds,
                           plot_performance_profile, plot_topk, plot_true_regret)
from ma2ml.stats import (CONFIDENCE, N_RESAMPLES, Interval, best_so_far, iqm, iqm_along, probability_of_improvement,
                         seeds_needed)

ANYTIME_BUDGETS = (25, 50, 100, 200)
"""Default budget points (evaluations) of the anytime tables; the full budget is always added."""
Tokens = Mapping[str, Sequence[int]]
"""One pipeline: agent -> its tokens (a ``results.jsonl`` row's ``tokens``)."""
Truth = Callable[[Sequence[Tokens]], np.ndarray]
"""Pipelines -> their ground-truth rewards (see ``ma2ml compare``'s ``known_truth``)."""


@dataclass
class Run:
    """One learner × seed: rewards of its evaluations, in order."""

    learner: str
    seed: int
    rewards: np.ndarray
    """Reward of each evaluation."""
    batches: np.ndarray
    """Batch index (0-based) of each evaluation."""
    wall_seconds: float = 0.0
    tokens: list[dict[str, list[int]]] | None = None
    """Each evaluation's pipeline (agent -> tokens), where recorded."""
    train_seconds: np.ndarray | None = None
    """Training seconds of each evaluation (``timings.jsonl``), where recorded."""
    true_rewards: np.ndarray | None = None
    """Ground-truth reward of each evaluation's pipeline, on envs that know it."""
    picks: Mapping[int, int] | None = None
    """The learner's own ``recommend()`` after each batch, where the run recorded it (learners whose
    recommendation is not the shared rule, e.g. racing): evaluations told -> index of the recommended
    pipeline's first evaluation. None: the rule (:func:`recommendation_index`) gives every recommendation."""

    @classmethod
    def from_records(cls, learner: str, seed: int, records: Sequence[Mapping[str, Any]], wall_seconds: float = 0.0,
                     timings: Sequence[Mapping[str, Any]] | None = None, truth: Truth | None = None,
                     picks: Mapping[int, int] | None = None) -> Run:
        """From ``results.jsonl`` rows (fields ``index``, ``reward``, ``batch``, ``tokens``), optionally
        ``timings.jsonl`` rows (``index``, ``train_seconds``), the env's ground truth and the recorded
        recommendations (:attr:`picks`)."""
        rows = sorted(records, key=lambda r: r["index"])
        tokens = [r["tokens"] for r in rows] if rows and all("tokens" in r for r in rows) else None
        seconds = {t["index"]: t["train_seconds"] for t in timings or ()}
        train_seconds = (np.array([seconds[r["index"]] for r in rows], dtype=float)
                         if rows and all(r["index"] in seconds for r in rows) else None)
        if truth is not None and tokens is None:
            raise UserError(f"{learner} seed {seed}: results rows without tokens cannot be scored on the truth")
        return cls(learner, seed, np.array([r["reward"] for r in rows], dtype=float),
                   np.array([r["batch"] for r in rows], dtype=int), wall_seconds, tokens, train_seconds,
                   None if truth is None else np.asarray(truth(tokens), dtype=float),
                   None if picks is None else dict(picks))

    @property
    def distinct_pipelines(self) -> int | None:
        """How many different pipelines the run evaluated (None when its tokens were not recorded)."""
        if self.tokens is None:
            return None
        return len({json.dumps(t, sort_keys=True) for t in self.tokens})

    @property
    def keys(self) -> list[str] | None:
        """Each evaluation's pipeline as a canonical string (None when its tokens were not recorded)."""
        return None if self.tokens is None else [json.dumps(t, sort_keys=True) for t in self.tokens]

    def recommended(self, n: int | None = None) -> int:
        """0-based index of the recommendation after the first ``n`` evaluations (default all): the index of
        that pipeline's first evaluation (:meth:`recommendation_curve`)."""
        return int(self.recommendation_curve()[(len(self.rewards) if n is None else n) - 1])

    def recommendation_curve(self) -> np.ndarray:
        """After each evaluation, the index of the recommendation: the learner's recorded ``recommend()``
        after the last batch told by then (:attr:`picks`), else the learners' shared rule
        (:func:`~ma2ml.agents.base.pick_recommendation`: the best lower confidence bound of the observed means;
        without repeats the best observed, ties the earliest), which is what ``recommend()`` answers for
        every learner that keeps it. Computed once per run (the report asks for it several times)."""
        return self._recommendation_curve

    @cached_property
    def _recommendation_curve(self) -> np.ndarray:
        curve = recommendation_index(self.rewards, self.keys)
        if self.picks:
            ends = np.array(sorted(self.picks), dtype=np.int64)
            last = np.searchsorted(ends, np.arange(1, len(curve) + 1), side="right") - 1
            recorded = np.array([self.picks[int(e)] for e in ends], dtype=np.int64)
            curve = np.where(last >= 0, recorded[np.maximum(last, 0)], curve)
        return curve

    def observed_mean(self, index: int, n: int | None = None) -> tuple[float, int]:
        """(mean observed reward, times evaluated) of evaluation ``index``'s pipeline in the first ``n``."""
        keys = self.keys
        if keys is None:
            return float(self.rewards[index]), 1
        same = [i for i, k in enumerate(keys[:n]) if k == keys[index]]
        return float(self.rewards[same].mean()), len(same)


# -- per-run curves ---------------------------------------------------------------------------------
def recommendation_index(rewards: np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
    """After each evaluation, the index of the recommendation so far (:meth:`Run.recommended`); ``keys``:
    each evaluation's pipeline (None: every evaluation a pipeline of its own)."""
    if keys is None:
        new_best = np.ones(len(rewards), dtype=bool)
        new_best[1:] = rewards[1:] > best_so_far(rewards)[:-1]
        return np.maximum.accumulate(np.where(new_best, np.arange(len(rewards)), 0))
    slot_of: dict[str, int] = {}
    slots = np.array([slot_of.setdefault(k, len(slot_of)) for k in keys], dtype=np.int64)
    first_index = np.full(len(slot_of), -1, dtype=np.int64)
    first_index[slots[::-1]] = np.arange(len(slots))[::-1]  # each pipeline's first evaluation
    totals, counts, squares = np.zeros(len(slot_of)), np.zeros(len(slot_of), dtype=np.int64), np.zeros(len(slot_of))
    picks = np.empty(len(rewards), dtype=np.int64)
    for i, (slot, reward) in enumerate(zip(slots, rewards)):
        totals[slot] += float(reward)
        counts[slot] += 1
        squares[slot] += float(reward) ** 2
        picks[i] = first_index[pick_recommendation(totals, counts, squares)]
    return picks


def evals_to_reach(rewards: np.ndarray, threshold: float) -> int | None:
    """1-based number of evaluations until a reward >= threshold (None: never)."""
    hit = np.flatnonzero(rewards >= threshold)
    return int(hit[0]) + 1 if hit.size else None


def budget_points(budget: int, budgets: Sequence[int] = ANYTIME_BUDGETS) -> list[int]:
    """The anytime budget points: those of ``budgets`` below ``budget``, then ``budget`` itself."""
    return sorted({int(b) for b in budgets if 1 <= b < budget} | {int(budget)})


@dataclass(frozen=True)
class Metric:
    """A per-run curve: one value after each evaluation."""

    key: str
    """Its name in ``per_run.json`` and ``marl_eval.json``."""
    name: str
    """Its name in tables and figures."""
    lower_is_better: bool
    curve: Callable[[Run], np.ndarray]

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"

    def values(self, run: Run, budget: int) -> np.ndarray:
        """The curve over ``budget`` evaluations (a shorter run keeps its last value)."""
        c = self.curve(run)
        return np.concatenate([c, np.full(budget - len(c), c[-1])])[:budget]


def run_metrics(optimum: float | None = None, true_optimum: float | None = None) -> list[Metric]:
    """The metrics known for an env: the best observed reward, the simple regret when the optimum is
    known, the true regret of the recommendation when the ground truth is."""
    out = [Metric("return", "best observed reward", False, lambda r: best_so_far(r.rewards))]
    if optimum is not None:
        out.append(Metric("regret", "simple regret (optimum − best observed)", True,
                          lambda r: optimum - best_so_far(r.rewards)))
    if true_optimum is not None:
        out.append(Metric("true_regret", "true regret of the recommendation", True,
                          lambda r: true_optimum - r.true_rewards[r.recommendation_curve()]))
    return out


@dataclass(frozen=True)
class PowerRow:
    """Seeds needed to separate two learners adjacent in the ranking."""

    better: str
    worse: str
    difference: float
    """|mean score difference|."""
    sd: float
    """SD of the paired per-seed differences (or √(sd² + sd²) when the seeds are not paired)."""
    paired: bool
    needed: float
    """Seeds per learner for :data:`POWER` at :data:`ALPHA` (:func:`seeds_needed`, at least 2)."""
    seeds: int
    """Seeds run per learner (the smaller of the two)."""

    @property
    def resolved(self) -> bool:
        return self.seeds >= self.needed


def power_row(better: LearnerSummary, worse: LearnerSummary) -> PowerRow:
    """The power estimate between two learners: paired on their common seeds when they ran the same
    seed list, two-sample otherwise."""
    a = dict(zip(better.seeds, better.scores))
    b = dict(zip(worse.seeds, worse.scores))
    paired = set(a) == set(b)
    if paired:
        d = np.array([a[s] - b[s] for s in sorted(a)])
        diff = float(d.mean())
        sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
    else:
        diff = float(np.mean(better.scores) - np.mean(worse.scores))
        sd = float(np.hypot(np.std(better.scores, ddof=1), np.std(worse.scores, ddof=1)))
    return PowerRow(better.learner, worse.learner, abs(diff), sd, paired, _seeds_to_run(diff, sd),
                    min(better.runs, worse.runs))


def _seeds_to_run(difference: float, sd: float) -> float:
    """:func:`~ma2ml.stats.seeds_needed`, rounded up to whole seeds and at least 2 (a paired test
    needs two); ``inf`` when ``sd`` is unknown (NaN) or the difference is 0."""
    needed = seeds_needed(difference, sd) if not math.isnan(sd) else math.inf
    return max(math.ceil(needed), 2) if math.isfinite(needed) else needed


# -- the comparison -----------------------------------------------------------------------------------
@dataclass
class LearnerSummary:
    learner: str
    runs: int
    seeds: list[int]
    best_reward: Interval
    """Best observed reward at the full budget, mean [CI]."""
    best_rewardiqm_along: float
    anytime: dict[str, list[Interval]]
    """Metric key -> mean [CI] at each budget point."""
    area: dict[str, Interval]
    """Metric key -> the area under its curve, normalised by the budget (the mean over evaluations 1..B)."""
    scores: np.ndarray
    """The comparison's score of each run, in ``seeds`` order."""
    score_mean: Interval
    scoreiqm_along: Interval
    distinct: list[int] | None = None
    """Distinct pipelines per run (None when the tokens were not recorded)."""
    evals_to_top1_median: float | None = None
    """Median over seeds of evaluations to reach the top-1% threshold (inf when fewer than half reach it)."""
    top1_reached: int = 0
    wall_seconds: float = 0.0
    under_noise: NoiseSummary | None = None
    """The recommendation under seed noise (noisy envs that know their ground truth; None elsewhere)."""


@dataclass
class NoiseSummary:
    """One learner's recommendation under seed noise, at the full budget: (a) its true regret (the score),
    (b) the true regret of the best pipeline it evaluated (by truth: what a perfect recommendation would
    reach), and the winner's curse (the recommendation's observed mean minus its truth)."""

    best_evaluated: np.ndarray
    """(b) per run, in the learner's ``seeds`` order."""
    curse: np.ndarray
    """The winner's-curse gap per run."""
    evaluations_of_it: np.ndarray
    """How many times each run evaluated its recommendation."""

    @property
    def best_evaluated_mean(self) -> Interval:
        return Interval.of(self.best_evaluated)

    @property
    def curse_mean(self) -> Interval:
        return Interval.of(self.curse)


@dataclass(frozen=True)
class PairRow:
    """Two learners' paired per-seed difference of one per-run value (first minus second), mean [95% CI]."""

    first: str
    second: str
    difference: Interval

    @property
    def resolved(self) -> bool:
        """The bootstrap CI of the mean paired difference excludes 0."""
        return self.difference.low > 0 or self.difference.high < 0


def paired_rows(values: Mapping[str, Mapping[int, float]], order: Sequence[str], seed: int = 0) -> list[PairRow]:
    """Every pair of learners (in ``order``, better first) with the mean [95% bootstrap CI] of their
    paired per-seed differences; empty unless every learner ran the same seeds."""
    seeds = {frozenset(v) for v in values.values()}
    if len(seeds) != 1:
        return []
    common = sorted(next(iter(seeds)))
    rows = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            d = [values[a][k] - values[b][k] for k in common]
            rows.append(PairRow(a, b, Interval.of(d, seed=seed)))
    return rows


@dataclass
class Comparison:
    """Everything ``summary.md`` reports (see the module docstring)."""

    budgets: list[int]
    metrics: list[Metric]
    """Every metric known (per-run JSON, marl-eval)."""
    tabulated: list[Metric]
    """The anytime tables and figure."""
    score: Metric
    learners: list[LearnerSummary]
    ranking: list[str]
    """Learners by mean score, best first."""
    improvement: dict[tuple[str, str], Interval]
    """(x, y) -> P(x better than y)."""
    power: list[PowerRow]
    best: str | None
    """The starred learner: the best mean score with an interval clear of every other's; None when not resolved."""
    optimum: float | None = None
    top1: float | None = None
    true_optimum: float | None = None
    noisy: bool = False
    """The env's evaluations carry seed noise (see :func:`compare_runs`)."""
    pairs: dict[str, list[PairRow]] = field(default_factory=dict)
    """Under seed noise with a ground truth: ``"recommended"`` and ``"best_evaluated"`` -> every learner
    pair's paired difference of (a) and (b) (:class:`NoiseSummary`); empty elsewhere."""

    def learner(self, name: str) -> LearnerSummary:
        return next(s for s in self.learners if s.learner == name)

    def verdict(self) -> str:
        """One sentence: the starred best learner, or why there is none."""
        m, top = self.score, self.learner(self.ranking[0])
        best = "lowest" if m.lower_is_better else "highest"
        if len(self.learners) == 1:
            return "One learner: no best learner to resolve."
        if self.best is not None:
            return f"Best learner: **{self.best}** ★ ({best} mean {m.name}; its 95% CI overlaps no other learner's)."
        if min(s.runs for s in self.learners) < 2:
            return (f"Best learner not resolved: the {best} mean {m.name} is {top.learner}'s "
                    f"({top.score_mean.text()}), but a learner with one seed has no interval; no star.")
        others = [s.learner for s in self.learners if s is not top and top.score_mean.overlaps(s.score_mean)]
        return (f"Best learner not resolved: the {best} mean {m.name} ({top.learner}, {top.score_mean.text()}) "
                f"has a 95% CI that overlaps those of {', '.join(others)}; no star.")


def _summarize(mine: list[Run], budgets: list[int], metrics: list[Metric], score: Metric,
               top1: float | None, seed: int, noisy: bool = False, true_optimum: float | None = None) -> LearnerSummary:
    budget = budgets[-1]
    finals = np.array([r.rewards.max() for r in mine])
    curves = {m.key: np.stack([m.values(r, budget) for r in mine]) for m in metrics}
    scores = curves[score.key][:, -1]
    distinct = [r.distinct_pipelines for r in mine]
    s = LearnerSummary(
        mine[0].learner, len(mine), [r.seed for r in mine], Interval.of(finals, seed=seed), iqm(finals),
        anytime={k: [Interval.of(c[:, b - 1], seed=seed) for b in budgets] for k, c in curves.items()},
        area={k: Interval.of(c.mean(axis=1), seed=seed) for k, c in curves.items()},
        scores=scores, score_mean=Interval.of(scores, seed=seed), scoreiqm_along=Interval.of(scores, iqm_along, seed=seed),
        distinct=None if None in distinct else distinct, wall_seconds=float(np.mean([r.wall_seconds for r in mine])))
    if top1 is not None:
        hits = [evals_to_reach(r.rewards, top1) for r in mine]
        s.top1_reached = sum(h is not None for h in hits)
        s.evals_to_top1_median = float(np.median([math.inf if h is None else h for h in hits]))
    if noisy and true_optimum is not None:
        picks = [r.recommended() for r in mine]
        observed = [r.observed_mean(i) for r, i in zip(mine, picks)]
        s.under_noise = NoiseSummary(
            np.array([true_optimum - r.true_rewards.max() for r in mine]),
            np.array([mean - r.true_rewards[i] for r, i, (mean, _) in zip(mine, picks, observed)]),
            np.array([times for _, times in observed]))
    return s


def compare_runs(runs: Sequence[Run], optimum: float | None = None, top1: float | None = None,
                 true_optimum: float | None = None, budgets: Sequence[int] = ANYTIME_BUDGETS,
                 seed: int = 0, noisy: bool = False) -> Comparison:
    """The comparison of ``runs`` (learners in first-seen order); ``true_optimum`` (the best
    ground-truth reward) needs every run's ``true_rewards``. ``noisy`` (the env's evaluations carry seed
    noise): the true regret of the recommendation leads the tables, the simple regret follows with a
    note on why it can be negative, and ``per_run.json`` adds the winner's-curse gap and the best
    evaluated pipeline's truth; deterministic envs report exactly as before."""
    if true_optimum is not None and any(r.true_rewards is None for r in runs):
        raise UserError("a true optimum needs every run's true_rewards")
    points = budget_points(max(len(r.rewards) for r in runs), budgets)
    metrics = run_metrics(optimum, true_optimum)
    score = next(m for m in metrics if m.key == ("true_regret" if true_optimum is not None else "return"))
    summaries = [_summarize(mine, points, metrics, score, top1, seed, noisy, true_optimum)
                 for mine in by_learner(runs).values()]
    sign = 1.0 if score.lower_is_better else -1.0
    ranking = [s.learner for s in sorted(summaries, key=lambda s: sign * s.score_mean.value)]
    improvement: dict[tuple[str, str], Interval] = {}
    for i, x in enumerate(summaries):
        for y in summaries[i + 1:]:
            p = probability_of_improvement(x.scores, y.scores, score.lower_is_better, seed=seed)
            improvement[x.learner, y.learner] = p
            improvement[y.learner, x.learner] = Interval(1 - p.value, 1 - p.high, 1 - p.low)
    by_name = {s.learner: s for s in summaries}
    power = [power_row(by_name[a], by_name[b]) for a, b in zip(ranking, ranking[1:])]
    top = by_name[ranking[0]]
    # a star needs intervals: with one run a learner's bootstrap "interval" is a point
    clear = (len(summaries) > 1 and min(s.runs for s in summaries) >= 2
             and not any(top.score_mean.overlaps(s.score_mean) for s in summaries if s is not top))
    tabulated = [m for m in metrics if m.key != "return"] or metrics
    if noisy:  # the truth's regret first: under seed noise the best observed overshoots its truth
        tabulated.sort(key=lambda m: m.key != "true_regret")
    pairs: dict[str, list[PairRow]] = {}
    if noisy and true_optimum is not None:
        pairs["recommended"] = paired_rows({s.learner: dict(zip(s.seeds, s.scores)) for s in summaries}, ranking, seed)
        by_b = sorted(summaries, key=lambda s: s.under_noise.best_evaluated.mean())
        pairs["best_evaluated"] = paired_rows({s.learner: dict(zip(s.seeds, s.under_noise.best_evaluated))
                                               for s in summaries}, [s.learner for s in by_b], seed)
    return Comparison(points, metrics, tabulated, score, summaries, ranking, improvement, power,
                      top.learner if clear else None, optimum, top1, true_optimum, noisy, pairs)


# -- summary.md -----------------------------------------------------------------------------------------
def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _final_table(c: Comparison) -> list[str]:
    has_distinct = all(s.distinct is not None for s in c.learners)
    has_top1 = c.top1 is not None
    head = ["learner", "seeds"] + ["distinct pipelines per run (mean [min, max])"] * has_distinct
    head += ["best observed reward ↑ (mean [95% CI])", "IQM"]
    head += ["evals to top 1% (median)", "seeds reaching top 1%"] * has_top1
    rows = []
    for s in c.learners:
        row = [s.learner, str(s.runs)]
        if has_distinct:
            row.append(f"{np.mean(s.distinct):.1f} [{min(s.distinct)}, {max(s.distinct)}]")
        row += [s.best_reward.text(), f"{s.best_rewardiqm_along:.4f}"]
        if has_top1:
            med = s.evals_to_top1_median
            row += ["not reached" if med is None or math.isinf(med) else f"{med:.0f}", f"{s.top1_reached}/{s.runs}"]
        rows.append(row)
    return _table(head, rows)


def _anytime_table(c: Comparison, m: Metric) -> list[str]:
    head = ["learner"] + [f"n = {b}" for b in c.budgets] + [f"area {m.arrow} (mean over n = 1..{c.budgets[-1]})"]
    rows = [[s.learner] + [i.text() for i in s.anytime[m.key]] + [s.area[m.key].text()] for s in c.learners]
    return [f"### Anytime: {m.name} {m.arrow} after n evaluations, mean [95% CI]", ""] + _table(head, rows)


def _score_section(c: Comparison) -> list[str]:
    m = c.score
    rows = [[f"**{s.learner}** ★" if s.learner == c.best else s.learner, str(s.runs), s.score_mean.text(),
             s.scoreiqm_along.text()] for s in c.learners]
    lines = [f"### Score: {m.name} at {c.budgets[-1]} evaluations "
             f"({m.arrow} {'lower' if m.lower_is_better else 'higher'} is better)", ""]
    return lines + _table(["learner", "seeds", "mean [95% CI]", "IQM [95% CI]"], rows) + ["", c.verdict()]


def _improvement_section(c: Comparison) -> list[str]:
    m = c.score
    op = "<" if m.lower_is_better else ">"
    names = [s.learner for s in c.learners]
    rows = [[x] + ["—" if x == y else c.improvement[x, y].text(2) for y in names] for x in names]
    return ([f"### Probability of improvement: P(row better than column) = P(row's {m.name} {op} column's) "
             "+ ½ P(equal), [95% CI]", ""] + _table(["", *names], rows))


def _power_section(c: Comparison) -> list[str]:
    if not c.power:
        return []
    paired = all(p.paired for p in c.power)
    how = ("the paired per-seed differences d (every learner ran the same seeds): "
           "n = ((z₀.₉₇₅ + z₀.₈) · sd(d) / |mean d|)²" if paired else
           "two independent samples (the seeds differ): n = ((z₀.₉₇₅ + z₀.₈) · √(sd₁² + sd₂²) / |mean₁ − mean₂|)²")
    rows = []
    for p in c.power:
        needed = "∞ (equal means)" if math.isinf(p.needed) else f"{p.needed:,.0f}"
        rows.append([f"{p.better} vs {p.worse}", f"{p.difference:.4f}", f"{p.sd:.4f}", needed, str(p.seeds),
                     "yes" if p.resolved else "no"])
    sd = "sd of paired differences" if paired else "√(sd₁² + sd₂²)"
    return ([f"### Power: seeds per learner to separate learners adjacent in the ranking "
             f"(80% power, two-sided α = 0.05; {c.score.name})", "",
             f"Normal approximation on {how}. Enough seeds: the seeds run reach 80% power for the observed "
             "difference (the star's rule, intervals that do not overlap, asks more).", ""]
            + _table(["pair (ranked)", "mean difference (absolute)", sd, "seeds needed", "seeds run", "enough seeds"],
                     rows))


def _noise_section(c: Comparison) -> list[str]:
    """Under seed noise: (a), (b) and the winner's curse per learner, then the resolved pairs of each."""
    if not c.pairs:
        return []
    rows = [[s.learner, s.score_mean.text(), s.under_noise.best_evaluated_mean.text(),
             s.under_noise.curse_mean.text(), f"{s.under_noise.evaluations_of_it.mean():.1f}"]
            for s in c.learners if s.under_noise is not None]
    lines = [f"### The recommendation under seed noise, at {c.budgets[-1]} evaluations, mean [95% CI]", "",
             "(a) is the score: the true regret of the pipeline the run recommends; (b) the true regret of the best "
             "pipeline the run evaluated, judged by the truth (what a perfect recommendation would reach: the "
             "search alone); the winner's curse is the recommendation's observed mean minus its truth.", ""]
    lines += _table(["learner", "(a) true regret of the recommendation ↓", "(b) best evaluated, by truth ↓",
                     "winner's curse (observed − truth)", "evaluations of the recommendation (mean)"], rows)
    for key, what in (("recommended", "(a) the recommendation"), ("best_evaluated", "(b) the best evaluated")):
        pairs = c.pairs[key]
        if not pairs:
            continue
        resolved = [p for p in pairs if p.resolved]
        lines += ["", f"Resolved pairs on {what}: **{len(resolved)} of {len(pairs)}** (the 95% bootstrap CI of the "
                  "mean paired per-seed difference excludes 0)"
                  + (": " + "; ".join(f"{p.first} − {p.second} = {p.difference.text()}" for p in resolved)
                     if resolved else "") + "."]
    return lines


def summary_markdown(c: Comparison, title: str = "", protocol: str = "") -> str:
    """``summary.md`` (see the module docstring); deterministic for given runs. ``protocol``: a sentence on
    the evaluation protocol, after the notes (empty: none)."""
    notes = []
    if c.optimum is not None:
        notes.append(f"Optimum (known from the table): {c.optimum:.4f}.")
    if c.top1 is not None:
        notes.append(f"Top-1% threshold: {c.top1:.4f}.")
    if c.true_optimum is not None:
        notes.append(f"Ground truth (each pipeline's reward averaged over its stored trainings): best "
                     f"{c.true_optimum:.4f}.")
    notes.append("A run recommends its best observed pipeline (the highest reward; ties: the earliest)"
                 + (", or, where it evaluated pipelines again, the best lower confidence bound of their means "
                    "(or the learner's own recommendation where the run recorded one: racing)"
                    if c.noisy else "")
                 + ("; its true regret is the best ground truth minus the recommendation's, so a lucky noisy "
                    "entry does not count as found." if c.true_optimum is not None else "."))
    if c.noisy and c.optimum is not None:
        notes.append("Under seed noise a best observed reward can exceed the optimum's expected reward, so the "
                     "simple regret (optimum − best observed) can be negative; it is listed after the true "
                     "regret for that reason.")
    lines = ([f"## {title}", ""] if title else []) + [" ".join(notes), ""] + ([protocol, ""] if protocol else [])
    lines += [f"### At the full budget ({c.budgets[-1]} evaluations)", ""] + _final_table(c) + [""]
    for m in c.tabulated:
        lines += _anytime_table(c, m) + [""]
    lines += _score_section(c) + [""]
    if c.pairs:
        lines += _noise_section(c) + [""]
    if len(c.learners) > 1:
        lines += _improvement_section(c) + [""] + _power_section(c) + [""]
    lines.append(f"Intervals: {CONFIDENCE:.0%} percentile bootstrap over runs ({N_RESAMPLES:,} resamples, fixed "
                 "seed; rliable's stratified bootstrap, whose strata with one task are the runs); the probability "
                 "of improvement resamples each learner's runs independently, as rliable does.")
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------------------------------
def per_run_json(runs: Sequence[Run], c: Comparison) -> dict[str, Any]:
    """Every run's recommendation and its metrics at each budget point (no wall-clock figure)."""
    budget = c.budgets[-1]
    out = []
    for r in runs:
        rec = r.recommended()
        entry: dict[str, Any] = {"learner": r.learner, "seed": r.seed, "evaluations": len(r.rewards),
                                 "distinct_pipelines": r.distinct_pipelines}
        entry["recommended"] = {"index": rec, "batch": int(r.batches[rec]), "observed_reward": float(r.rewards[rec]),
                                "tokens": None if r.tokens is None else r.tokens[rec]}
        if r.true_rewards is not None:
            entry["recommended"]["true_reward"] = float(r.true_rewards[rec])
        if c.noisy:
            mean, times = r.observed_mean(rec)
            entry["recommended"].update(observed_mean=mean, evaluations_of_it=times)
            if r.true_rewards is not None:  # (b) and the winner's curse
                entry["recommended"]["winners_curse"] = mean - float(r.true_rewards[rec])
                entry["best_evaluated_true_reward"] = float(r.true_rewards.max())
        if c.top1 is not None:
            entry["evals_to_top1"] = evals_to_reach(r.rewards, c.top1)
        values = {m.key: m.values(r, budget) for m in c.metrics}
        entry["at_budget"] = {m.key: [float(values[m.key][b - 1]) for b in c.budgets] for m in c.metrics}
        entry["area"] = {m.key: float(values[m.key].mean()) for m in c.metrics}
        out.append(entry)
    return {"budgets": c.budgets, "score": c.score.key, "optimum": c.optimum, "top1_threshold": c.top1,
            "true_optimum": c.true_optimum, "runs": out}


def marl_eval_json(runs: Sequence[Run], env_name: str, task_name: str, c: Comparison) -> dict[str, Any]:
    """marl-eval's raw-data layout: env -> task -> algorithm -> ``run_<seed>`` -> ``step_<i>`` (one per
    budget point: ``step_count`` = evaluations, one value per metric: ``return`` the best observed
    reward so far, ``regret`` and ``true_regret`` where known) and ``absolute_metrics`` (the same
    metrics at the full budget), every metric a one-element list."""
    budget = c.budgets[-1]
    algos: dict[str, Any] = {}
    for r in runs:
        values = {m.key: m.values(r, budget) for m in c.metrics}
        steps: dict[str, Any] = {f"step_{i}": {"step_count": b, **{k: [float(v[b - 1])] for k, v in values.items()}}
                                 for i, b in enumerate(c.budgets)}
        steps["absolute_metrics"] = {k: [float(v[-1])] for k, v in values.items()}
        algos.setdefault(r.learner, {})[f"run_{r.seed}"] = steps
    return {env_name: {task_name: algos}}


def write_report(runs: Sequence[Run], out: Path, env_name: str, optimum: float | None = None,
                 top1: float | None = None, k: int = 10, seed: int = 0, budgets: Sequence[int] = ANYTIME_BUDGETS,
                 true_optimum: float | None = None, noisy: bool = False, protocol: str = "") -> Comparison:
    """Write summary.md, the figures, per_run.json, marl_eval.json and wall_seconds.json into ``out``; an
    ``OSError`` (a full disk) names the file it was writing. ``noisy``: see :func:`compare_runs`;
    ``protocol``: a sentence on the evaluation protocol for ``summary.md`` (empty: none)."""

    out.mkdir(parents=True, exist_ok=True)
    c = compare_runs(runs, optimum, top1, true_optimum, budgets, seed, noisy=noisy)
    seeds = max(s.runs for s in c.learners)
    title = f"{env_name}: {len(c.learners)} learners × {seeds} seeds, budget {c.budgets[-1]}"
    figure_title = f"{env_name}, budget {c.budgets[-1]}, {seeds} seeds per learner"
    files: dict[str, Callable[[Path], object]] = {
        "summary.md": lambda p: p.write_text(summary_markdown(c, title, protocol)),
        "regret.png" if optimum is not None else "best_so_far.png":
            lambda p: plot_best_so_far(runs, p, optimum, seed, title=figure_title),
    }
    if c.noisy and true_optimum is not None:  # the main figure is the truth's: a log axis would hide zeros
        true_regret = next(m for m in c.metrics if m.key == "true_regret")
        files["regret.png"] = lambda p: plot_true_regret(runs, p, true_regret.curve, seed, title=figure_title)
    if all(r.train_seconds is not None for r in runs):
        files["best_so_far_seconds.png"] = lambda p: plot_best_so_far_seconds(runs, p, optimum, seed,
                                                                             title=figure_title)
    files.update({
        f"top{k}.png": lambda p: plot_topk(runs, p, k, seed, optimum=optimum, title=figure_title),
        "batch_scatter.png": lambda p: plot_batch_scatter(runs, p, optimum=optimum, title=figure_title),
        "anytime.png": lambda p: plot_anytime(c, p, title=figure_title),
        "performance_profile.png": lambda p: plot_performance_profile(c, p, seed, title=figure_title),
        "per_run.json": lambda p: p.write_text(json.dumps(per_run_json(runs, c), indent=1) + "\n"),
        "marl_eval.json": lambda p: p.write_text(json.dumps(marl_eval_json(runs, env_name, "ma2ml", c), indent=1)),
        "wall_seconds.json": lambda p: p.write_text(json.dumps({s.learner: s.wall_seconds for s in c.learners},
                                                               indent=1)),
    })
    for name, write in files.items():
        try:
            write(out / name)
        except OSError as exc:  # a full disk fails in write(), which names no file: name it for the one line
            if exc.filename is not None:
                raise
            raise type(exc)(exc.errno, exc.strerror or str(exc), str(out / name)) from exc
    return c


# -- power at several budgets, from a committed per_run.json ------------------------------------------
POSTER_PAIRS = (("ma2ml", "ma2ml-onpolicy"), ("ma2ml-onpolicy", "ma2ml-lite"), ("ma2ml-lite", "reinforce"),
                ("ma2ml", "reinforce"), ("ma2ml", "random"))
"""The pairs of the poster's ordering (MA2ML > on-policy > Lite > single agent) and MA2ML vs random search."""


@dataclass(frozen=True)
class BudgetPower:
    """Seeds needed for 80% power between two learners at one budget (paired on their common seeds)."""

    budget: int
    first: str
    """The better of the two by mean score at this budget for ranking neighbours; a poster pair's first."""
    second: str
    first_mean: float
    second_mean: float
    sd: float
    needed: float
    seeds: int


def power_at_budgets(per_run: Mapping[str, Any], budgets: Sequence[int],
                     pairs: Sequence[tuple[str, str]] | None = None) -> list[BudgetPower]:
    """From a ``per_run.json`` (``ma2ml compare``'s): for each of ``budgets`` (which must be among its
    budget points), the seeds per learner needed for 80% power between learners adjacent in that
    budget's ranking by the mean score metric (lower is better for regrets), plus ``pairs`` (default:
    :data:`POSTER_PAIRS`, where both learners ran). Paired on the seeds both learners ran."""
    key, points = per_run["score"], list(per_run["budgets"])
    missing = [b for b in budgets if b not in points]
    if missing:
        raise UserError(f"budgets {missing} are not among the comparison's budget points {points}")
    lower = key != "return"
    scores: dict[str, dict[int, list[float]]] = {}
    for run in per_run["runs"]:
        scores.setdefault(run["learner"], {})[run["seed"]] = run["at_budget"][key]
    rows = []
    for budget in budgets:
        at = points.index(budget)
        mean = {name: float(np.mean([v[at] for v in runs.values()])) for name, runs in scores.items()}
        ranking = sorted(mean, key=lambda n: mean[n] if lower else -mean[n])
        wanted = list(zip(ranking, ranking[1:]))
        wanted += [p for p in (POSTER_PAIRS if pairs is None else pairs)
                   if p[0] in scores and p[1] in scores and p not in wanted and p[::-1] not in wanted]
        for a, b in wanted:
            common = sorted(set(scores[a]) & set(scores[b]))
            d = np.array([scores[a][s][at] - scores[b][s][at] for s in common])
            sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
            rows.append(BudgetPower(budget, a, b, mean[a], mean[b], sd, _seeds_to_run(float(d.mean()), sd),
                                    len(common)))
    return rows


def format_budget_power(rows: Sequence[BudgetPower], metric: str) -> list[str]:
    """The power rows as text lines, one block per budget."""
    lines = []
    for budget in sorted({r.budget for r in rows}):
        lines.append(f"   budget {budget}: seeds per learner for 80% power (paired, two-sided α = 0.05, {metric})")
        for r in (r for r in rows if r.budget == budget):
            needed = "never (equal means)" if not math.isfinite(r.needed) else f"{r.needed:,}"
            lines.append(f"     {r.first} ({r.first_mean:.4f}) vs {r.second} ({r.second_mean:.4f}): {needed}"
                         f"{' (resolved with the ' + str(r.seeds) + ' seeds run)' if r.seeds >= r.needed else ''}")
    return lines
