"""A :class:`SuiteComparison`: learners × the tasks of a benchmark suite × seeds, ranked across tasks.

    ma2ml compare --suite tables-v1:test --learners ma2ml,random,independent --seeds 10 --out runs/suite

Every task is a :class:`~ma2ml.comparison.Comparison` in ``OUT/tasks/<task>/`` (its own ``summary.md``,
figures and ``per_run.json``; resumable run by run), at the task's budget with the anytime points at 10,
25, 50 and 100 % of it. Across the tasks, ``OUT/suite.md`` and ``OUT/suite.json`` report:

* per task, the **normalised score** of each run, the true regret of its recommended pipeline divided by
  random search's expected true regret at the same budget, computed from the table
  (:func:`ma2ml.suites.random_search_regret`): 0 is the optimum, 1 is random search; and the task's
  properties (noise ratio, random evaluations to the top 0.1 %);
* **aggregates** over tasks (:mod:`ma2ml.suitestats`): IQM and mean with bootstrap CIs stratified by task,
  the probability of improvement of the first learner over each other one, the average rank at each
  budget fraction, a Friedman test with the Nemenyi critical difference (``cd.png``);
* **replication**: the learners' order from the first and the second half of the seeds, with the
  Spearman correlation of the two (disjoint seed sets);
* the **interaction control**: on every task where the interaction-blind learner ``independent`` is not
  resolved worse than the best learner (the paired 95% CI of its score minus the best's reaches 0), the
  task is flagged as not measuring coordination; and, for every learner, the tasks on which it is resolved
  better or worse than the control.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.comparison import Comparison
from ma2ml.envs.core.errors import UserError
from ma2ml.suites import SuiteTask, get_suite

BUDGET_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
"""The anytime points of every task, as fractions of its budget."""
CONTROL = "independent"
"""The interaction-blind learner of the interaction control."""
SUITE_SEEDS = 10
"""Default seeds per learner and task."""


def task_budgets(budget: int) -> list[int]:
    """A task's anytime points (:data:`BUDGET_FRACTIONS` of its budget; distinct, at least 1)."""
    return sorted({max(1, round(f * budget)) for f in BUDGET_FRACTIONS})


@dataclass(frozen=True)
class TaskResult:
    """One task's runs, normalised: ``scores[learner]`` is ``(seeds, budget points)``."""

    task: SuiteTask
    budgets: list[int]
    random_regret: list[float]
    """Random search's expected true regret at each budget point (the normaliser)."""
    scores: dict[str, np.ndarray]
    seeds: list[int]
    properties: dict[str, Any] = field(default_factory=dict)


def read_task(task: SuiteTask, folder: Path, learners: Sequence[str]) -> TaskResult:
    """A finished task comparison's normalised scores (from its ``per_run.json``)."""
    per_run = json.loads((folder / "per_run.json").read_text(encoding="utf-8"))
    from ma2ml.suites import task_properties

    budgets = [int(b) for b in per_run["budgets"]]
    properties = task_properties(task, budgets)
    regret = properties.pop("random_regret_at")  # the normaliser at each budget point
    scale = np.maximum(np.asarray(regret), 1e-12)
    scores: dict[str, list[np.ndarray]] = {name: [] for name in learners}
    seeds: dict[str, list[int]] = {name: [] for name in learners}
    for run in per_run["runs"]:
        if run["learner"] in scores:
            scores[run["learner"]].append(np.asarray(run["at_budget"]["true_regret"], dtype=float) / scale)
            seeds[run["learner"]].append(int(run["seed"]))
    order = {name: np.argsort(seeds[name]) for name in learners}
    return TaskResult(task, budgets, list(map(float, regret)),
                      {name: np.asarray(scores[name])[order[name]] for name in learners},
                      sorted(seeds[learners[0]]), properties)


@dataclass(frozen=True, kw_only=True)
class SuiteComparison:
    """Learners × a suite's tasks × seeds, written to :attr:`out` (see the module docstring)."""

    out: str | Path
    suite: str
    """``NAME``, ``NAME:dev`` or ``NAME:test`` (``ma2ml bench suites``)."""
    learners: Sequence[str]
    seeds: int = SUITE_SEEDS
    first_seed: int = 0
    batch_size: int = 10
    jobs: int = 1
    learner_args: Mapping[str, Any] = field(default_factory=dict)
    no_repeat: bool | None = None
    tasks: tuple[SuiteTask, ...] = field(init=False)
    """The tasks of the suite's split."""
    title: str = field(init=False)
    """``NAME`` or ``NAME:split``."""

    def __post_init__(self) -> None:
        suite, split = get_suite(self.suite)
        object.__setattr__(self, "learners", [n.strip() for n in self.learners if n.strip()])
        if len(set(self.learners)) != len(self.learners):
            raise UserError(f"--learners names a learner twice: {','.join(self.learners)}")
        if not isinstance(self.seeds, int) or self.seeds < 2:
            raise UserError(f"--seeds must be an integer >= 2 on a suite (the replication splits them), "
                            f"got {self.seeds}")
        object.__setattr__(self, "tasks", tuple(suite.split(split)))
        object.__setattr__(self, "title", f"{suite.name}{':' + split if split else ''}")
        self.comparisons()  # every task's settings are checked before anything runs

    def comparisons(self) -> list[tuple[SuiteTask, Comparison]]:
        """Each task and its comparison (in ``out/tasks/<task>``)."""
        return [(task, Comparison(out=Path(self.out) / "tasks" / task.name, env=task.env, env_args=task.env_args,
                                  learners=self.learners, seeds=self.seeds, first_seed=self.first_seed,
                                  budget=task.budget, batch_size=self.batch_size, budgets=task_budgets(task.budget),
                                  jobs=self.jobs, learner_args=self.learner_args, no_repeat=self.no_repeat))
                for task in self.tasks]

    def run(self, progress: bool = True) -> dict[str, Any]:
        """Run every task's unfinished runs, then write ``suite.md``, ``suite.json`` and the figures."""
        results = []
        for task, comparison in self.comparisons():
            if progress:
                print(f"task {task.name} ({task.env}, budget {task.budget})", flush=True)
            comparison.run(progress=progress)
            results.append(read_task(task, Path(comparison.out), self.learners))
        return write_suite_report(results, Path(self.out), self.title)


# -- the report ---------------------------------------------------------------------------------------------
def _paired_ci(diff: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean of paired per-seed differences (a point when they are all equal)."""
    from scipy.stats import bootstrap

    if np.ptp(diff) == 0:
        return float(diff[0]), float(diff[0])
    ci = bootstrap((diff,), np.mean, n_resamples=2000, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def _control_flags(results: Sequence[TaskResult], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per task where :data:`CONTROL` ran: the best other learner, the paired difference (control minus best,
    final budget) with its 95% bootstrap CI, and whether the task is flagged (the CI reaches 0)."""
    out = {}
    for r in results:
        if CONTROL not in r.scores or len(r.scores) < 2:
            continue
        finals = {name: s[:, -1] for name, s in r.scores.items()}
        best = min((n for n in finals if n != CONTROL), key=lambda n: finals[n].mean())
        diff = finals[CONTROL] - finals[best]
        low, high = _paired_ci(diff, seed)
        out[r.task.name] = {"best": best, "difference": float(diff.mean()), "low": low, "high": high,
                            "flagged": bool(low <= 0.0)}
    return out


def _versus_control(results: Sequence[TaskResult], seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """Per learner: the tasks on which it is resolved better than :data:`CONTROL` (the paired 95% CI of control minus
    learner, final budget, lies above 0), resolved worse (below 0), and not resolved."""
    out: dict[str, dict[str, list[str]]] = {}
    for r in results:
        if CONTROL not in r.scores:
            continue
        for name, scores in r.scores.items():
            if name == CONTROL:
                continue
            low, high = _paired_ci(r.scores[CONTROL][:, -1] - scores[:, -1], seed)
            verdict = "better" if low > 0 else "worse" if high < 0 else "unresolved"
            out.setdefault(name, {"better": [], "worse": [], "unresolved": []})[verdict].append(r.task.name)
    return out


def _improvement_pairs(order: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs whose probability of improvement is reported: the best learner (by IQM) over each other one,
    then every other learner over random search where it ran."""
    pairs = [(order[0], n) for n in order[1:]]
    if "random" in order:
        pairs += [(n, "random") for n in order[1:] if n != "random"]
    return pairs


def suite_statistics(results: Sequence[TaskResult], seed: int = 0) -> dict[str, Any]:
    """Every aggregate of the module docstring, as plain JSON values."""
    from ma2ml.suitestats import (aggregate, friedman, probability_of_improvement, ranks_over_budget,
                                  replication)

    learners = list(results[0].scores)
    final = {n: np.stack([r.scores[n][:, -1] for r in results]) for n in learners}  # (tasks, seeds)
    curves = {n: np.stack([r.scores[n] for r in results]) for n in learners}  # (tasks, seeds, points)
    half = final[learners[0]].shape[1] // 2
    iqm = aggregate(final, "iqm", seed=seed)
    mean = aggregate(final, "mean", seed=seed)
    order = sorted(learners, key=lambda n: iqm[n].value)
    stats: dict[str, Any] = {
        "learners": order, "tasks": [r.task.name for r in results], "seeds": results[0].seeds,
        "iqm": {n: vars(iqm[n]) for n in order}, "mean": {n: vars(mean[n]) for n in order},
        "improvement": {f"{a} > {b}": vars(probability_of_improvement(final, a, b, seed=seed))
                        for a, b in _improvement_pairs(order)},
        "ranks_over_budget": {"fractions": list(BUDGET_FRACTIONS),
                              **{n: list(map(float, v)) for n, v in ranks_over_budget(curves).items()}},
        "control": _control_flags(results, seed),
        "versus_control": _versus_control(results, seed),
        "per_task": {r.task.name: {"split": r.task.split, "env": r.task.env, "budget": r.task.budget,
                                   "random_regret": r.random_regret[-1],
                                   "mean_score": {n: float(r.scores[n][:, -1].mean()) for n in order},
                                   "properties": r.properties} for r in results},
    }
    if len(learners) >= 3 and len(results) >= 2:
        f = friedman({n: final[n].mean(axis=1) for n in learners})
        stats["friedman"] = {"statistic": f.statistic, "pvalue": f.pvalue, "ranks": f.ranks, "cd": f.cd,
                             "alpha": f.alpha, "tasks": f.tasks, "cliques": [list(c) for c in f.cliques()]}
    if half >= 1:
        with warnings.catch_warnings():  # one half's ranks all tied: no correlation (reported as undefined)
            warnings.simplefilter("ignore")
            rho, order_a, order_b = replication({n: final[n][:, :half] for n in learners},
                                                {n: final[n][:, half:] for n in learners})
        seeds = results[0].seeds
        stats["replication"] = {"spearman": None if np.isnan(rho) else rho, "seeds_a": seeds[:half],
                                "seeds_b": seeds[half:], "order_a": order_a, "order_b": order_b}
    return stats


def _fmt(i: Mapping[str, float]) -> str:
    return f"{i['value']:.3f} [{i['low']:.3f}, {i['high']:.3f}]"


def suite_markdown(stats: Mapping[str, Any], title: str) -> str:
    """``suite.md``: the aggregates, the per-task table with the control's flag, the replication line."""
    order, tasks = stats["learners"], stats["tasks"]
    lines = [f"# {title}: {len(order)} learners × {len(tasks)} tasks × {len(stats['seeds'])} seeds", "",
             "Normalised score: the true regret of a run's recommendation divided by random search's expected true "
             "regret at the same budget (0 = the optimum, 1 = random search); lower is better. CIs: 95%, bootstrap "
             "stratified by task.", "",
             "| learner | IQM | mean | average rank (final) |", "|---|---|---|---|"]
    ranks = stats.get("friedman", {}).get("ranks", {})
    for n in order:
        rank = f"{ranks[n]:.2f}" if n in ranks else "—"
        lines.append(f"| {n} | {_fmt(stats['iqm'][n])} | {_fmt(stats['mean'][n])} | {rank} |")
    lines += ["", "Probability of improvement (the best by IQM over each other learner, then each learner over random "
              "search; > 0.5 favours the first; resolved where the CI excludes 0.5):", ""]
    lines += [f"- P({pair}) = {_fmt(v)}" for pair, v in stats["improvement"].items()]
    if "friedman" in stats:
        f = stats["friedman"]
        cliques = "; ".join(", ".join(c) for c in f["cliques"]) or "none"
        lines += ["", f"Friedman test over {f['tasks']} tasks: χ² = {f['statistic']:.2f}, p = {f['pvalue']:.2g}. "
                  f"Nemenyi critical difference at α = {f['alpha']}: {f['cd']:.2f} average ranks "
                  f"(`cd.png`); groups not separated: {cliques}."]
    fractions = stats["ranks_over_budget"]["fractions"]
    lines += ["", "Average rank over tasks at each fraction of the budget (`ranks.png`):", "",
              "| learner | " + " | ".join(f"{100 * f:g}%" for f in fractions) + " |",
              "|---|" + "---|" * len(fractions)]
    lines += [f"| {n} | " + " | ".join(f"{v:.2f}" for v in stats["ranks_over_budget"][n]) + " |" for n in order]
    if "replication" in stats:
        rep = stats["replication"]
        rho = "undefined (a half ranks every learner the same)" if rep["spearman"] is None else f"{rep['spearman']:.2f}"
        lines += ["", f"Replication: seeds {rep['seeds_a'][0]}–{rep['seeds_a'][-1]} rank the learners "
                  f"{' > '.join(rep['order_a'])}; seeds {rep['seeds_b'][0]}–{rep['seeds_b'][-1]} rank them "
                  f"{' > '.join(rep['order_b'])}: Spearman {rho}."]
    control = stats["control"]
    lines += ["", "Per task: mean normalised score at the full budget; random search's expected true regret there; "
              f"the interaction control (`{CONTROL}` minus the best learner, paired 95% CI; flagged when the CI "
              "reaches 0: the task does not measure coordination).", "",
              "| task | split | budget | random regret | " + " | ".join(order) + " | control |",
              "|---|---|---|---|" + "---|" * len(order) + "---|"]
    for name in tasks:
        t = stats["per_task"][name]
        c = control.get(name)
        flag = ("—" if c is None else
                f"{'**flagged**' if c['flagged'] else 'ok'} ({c['difference']:+.2f} [{c['low']:+.2f}, "
                f"{c['high']:+.2f}] vs {c['best']})")
        lines.append(f"| {name} | {t['split']} | {t['budget']} | {t['random_regret']:.4f} | "
                     + " | ".join(f"{t['mean_score'][n]:.3f}" for n in order) + f" | {flag} |")
    versus = stats.get("versus_control", {})
    if versus:
        lines += ["", f"Each learner against the interaction control (`{CONTROL}` minus the learner per task, paired "
                  "95% CI at the full budget): the tasks on which it is resolved better, resolved worse, and how many "
                  "are not resolved.", "", f"| learner | better than {CONTROL} | worse | not resolved |",
                  "|---|---|---|---|"]
        lines += [f"| {n} | {', '.join(versus[n]['better']) or '—'} | {', '.join(versus[n]['worse']) or '—'} | "
                  f"{len(versus[n]['unresolved'])} |" for n in order if n in versus]
    return "\n".join(lines) + "\n"


def write_suite_report(results: Sequence[TaskResult], out: Path, title: str, seed: int = 0) -> dict[str, Any]:
    """Write ``suite.md``, ``suite.json``, ``ranks.png`` and (with a Friedman test) ``cd.png``; returns the
    statistics."""
    from ma2ml.figures import plot_average_ranks, plot_cd_diagram
    from ma2ml.suitestats import Friedman

    stats = suite_statistics(results, seed)
    (out / "suite.json").write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    (out / "suite.md").write_text(suite_markdown(stats, title), encoding="utf-8")
    ranks = stats["ranks_over_budget"]
    plot_average_ranks(ranks["fractions"], {n: ranks[n] for n in stats["learners"]}, out / "ranks.png", title)
    if "friedman" in stats:
        f = stats["friedman"]
        plot_cd_diagram(Friedman(f["statistic"], f["pvalue"], f["ranks"], f["cd"], f["alpha"], f["tasks"]),
                        out / "cd.png", title=f"{title}: average ranks, Nemenyi CD {f['cd']:.2f}")
    return stats
