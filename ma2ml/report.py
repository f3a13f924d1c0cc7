"""Statistics, tables and figures for comparing learners over seeds.

Input: :class:`Run` s (one learner, one seed: the reward of every evaluation in order and
its batch). Output: best-so-far and simple-regret curves with bootstrap bands, the poster's
two figures (average reward of the top-k pipelines vs batches; rewards per batch), a
markdown summary (final value mean ± 95% bootstrap CI, IQM, evaluations to reach the top
1%, wall time) and marl-eval-style JSON.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats


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

    @classmethod
    def from_records(cls, learner: str, seed: int, records: Sequence[Mapping[str, Any]],
                     wall_seconds: float = 0.0) -> Run:
        """From ``results.jsonl`` rows (fields ``reward`` and ``batch``)."""
        rows = sorted(records, key=lambda r: r["index"])
        return cls(learner, seed, np.array([r["reward"] for r in rows], dtype=float),
                   np.array([r["batch"] for r in rows], dtype=int), wall_seconds)


def best_so_far(rewards: np.ndarray) -> np.ndarray:
    return np.maximum.accumulate(rewards)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean (the mean of the middle 50%)."""
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, seed: int = 0,
                 n_resamples: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (``scipy.stats.bootstrap``); a constant sample gives a point."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or np.ptp(arr) == 0:
        return float(arr.mean()), float(arr.mean())
    res = stats.bootstrap((arr,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def curve_band(curves: np.ndarray, confidence: float = 0.95, seed: int = 0,
               n_resamples: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and bootstrap band over runs (rows) at every column, vectorized over columns."""
    rng = np.random.default_rng(seed)
    n = curves.shape[0]
    means = curves.mean(axis=0)
    if n < 2:
        return means, means.copy(), means.copy()
    idx = rng.integers(0, n, size=(n_resamples, n))
    boot = curves[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return means, np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)


def evals_to_reach(rewards: np.ndarray, threshold: float) -> int | None:
    """1-based number of evaluations until a reward >= threshold (None: never)."""
    hit = np.flatnonzero(rewards >= threshold)
    return int(hit[0]) + 1 if hit.size else None


def topk_by_batch(run: Run, k: int) -> np.ndarray:
    """Average reward of the top-k pipelines found up to each batch (the poster's left figure)."""
    out = []
    for b in range(int(run.batches.max()) + 1):
        seen = np.sort(run.rewards[run.batches <= b])[::-1]
        out.append(seen[:k].mean())
    return np.array(out)


@dataclass
class LearnerSummary:
    learner: str
    runs: int
    final_mean: float
    final_ci: tuple[float, float]
    final_iqm: float
    regret_mean: float | None = None
    regret_ci: tuple[float, float] | None = None
    evals_to_top1_median: float | None = None
    """Median over seeds of evaluations to reach the top-1% threshold (inf when fewer than half reach it)."""
    top1_reached: int = 0
    wall_seconds: float = 0.0
    finals: list[float] = field(default_factory=list)


def summarize(runs: Sequence[Run], optimum: float | None = None, top1: float | None = None,
              seed: int = 0) -> list[LearnerSummary]:
    """One summary per learner (in first-seen order)."""
    out = []
    for learner in dict.fromkeys(r.learner for r in runs):
        mine = [r for r in runs if r.learner == learner]
        finals = np.array([r.rewards.max() for r in mine])
        s = LearnerSummary(learner, len(mine), float(finals.mean()), bootstrap_ci(finals, seed=seed), iqm(finals),
                           wall_seconds=float(np.mean([r.wall_seconds for r in mine])), finals=finals.tolist())
        if optimum is not None:
            regrets = optimum - finals
            s.regret_mean, s.regret_ci = float(regrets.mean()), bootstrap_ci(regrets, seed=seed)
        if top1 is not None:
            hits = [evals_to_reach(r.rewards, top1) for r in mine]
            s.top1_reached = sum(h is not None for h in hits)
            s.evals_to_top1_median = float(np.median([math.inf if h is None else h for h in hits]))
        out.append(s)
    return out


def summary_markdown(summaries: Sequence[LearnerSummary], title: str = "") -> str:
    """The comparison table; the best final mean is marked in bold with a ★.

    It holds no wall-clock figure, so rerunning a comparison on CPU reproduces it exactly
    (:func:`write_report` puts wall times in ``wall_seconds.json``).
    """
    best = max(summaries, key=lambda s: s.final_mean).learner
    has_regret = any(s.regret_mean is not None for s in summaries)
    has_top1 = any(s.evals_to_top1_median is not None for s in summaries)
    head = ["learner", "seeds", "best reward (mean [95% CI])", "IQM"]
    head += ["simple regret (mean [95% CI])"] * has_regret
    head += ["evals to top 1% (median)", "seeds reaching top 1%"] * has_top1
    lines = ([f"## {title}", ""] if title else []) + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        name = f"**{s.learner}** ★" if s.learner == best else s.learner
        row = [name, str(s.runs), f"{s.final_mean:.4f} [{s.final_ci[0]:.4f}, {s.final_ci[1]:.4f}]", f"{s.final_iqm:.4f}"]
        if has_regret:
            row.append(f"{s.regret_mean:.4f} [{s.regret_ci[0]:.4f}, {s.regret_ci[1]:.4f}]")
        if has_top1:
            med = s.evals_to_top1_median
            row += ["not reached" if med is None or math.isinf(med) else f"{med:.0f}", f"{s.top1_reached}/{s.runs}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _by_learner(runs: Sequence[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.learner, []).append(r)
    return out


def _stack(curves: list[np.ndarray]) -> np.ndarray:
    """Pad curves to the longest with their last value (a finished run keeps its best)."""
    n = max(len(c) for c in curves)
    return np.stack([np.concatenate([c, np.full(n - len(c), c[-1])]) for c in curves])


OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
"""The Okabe-Ito palette, told apart under every common colour-vision deficiency (its yellow left
out: too faint on white)."""
LINE_STYLES = ("-", "--", "-.", ":")


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learner_styles(learners: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A colour-blind-safe colour and a line style per learner: 7 colours x 4 styles, so up to 28
    learners differ by their pair, and any two of the first 7 by colour alone."""
    return {name: {"color": OKABE_ITO[i % len(OKABE_ITO)], "linestyle": LINE_STYLES[i % len(LINE_STYLES)]}
            for i, name in enumerate(learners)}


def _band(ax: Any, curves: np.ndarray, label: str, style: dict[str, Any], seed: int) -> None:
    """The mean over runs (rows) as a line and its 95% bootstrap band."""
    mean, lo, hi = curve_band(curves, seed=seed)
    x = np.arange(1, len(mean) + 1)
    ax.plot(x, mean, label=label, lw=1.6, **style)
    ax.fill_between(x, lo, hi, alpha=0.12, color=style["color"], lw=0)


def _legend_outside(fig: Any, ax: Any) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    fig.tight_layout()


def _plot_bands(runs: Sequence[Run], path: Path, curves_of: Any, seed: int, title: str, subtitle: str,
                finish: Any) -> None:
    """One banded line per learner (``curves_of(its runs)`` -> curves, one row per run); ``finish(ax)``
    sets the axes; the titles, legend and file are common to every banded figure."""
    plt = _pyplot()
    groups = _by_learner(runs)
    styles = learner_styles(list(groups))
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    for learner, mine in groups.items():
        _band(ax, curves_of(mine), f"{learner} ({len(mine)} seeds)", styles[learner], seed)
    finish(ax)
    fig.suptitle(title, fontsize=10)
    ax.set_title(f"{subtitle}\nline: mean over seeds; band: 95% bootstrap CI of the mean", fontsize=8)
    _legend_outside(fig, ax)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_best_so_far(runs: Sequence[Run], path: Path, optimum: float | None = None, seed: int = 0,
                     title: str = "") -> None:
    """Best-so-far (or simple regret when ``optimum`` is known, log scale) vs evaluations, bootstrap bands."""
    def curves_of(mine: list[Run]) -> np.ndarray:
        curves = _stack([best_so_far(r.rewards) for r in mine])
        return np.maximum(optimum - curves, 1e-5) if optimum is not None else curves

    def finish(ax: Any) -> None:
        ax.set_xlabel("evaluations (pipelines trained)")
        if optimum is not None:
            ax.set_yscale("log")
        ax.set_ylabel("simple regret (optimum − best so far)" if optimum is not None else "best reward so far")
        ax.grid(alpha=0.3, which="both", lw=0.5)

    what = (f"simple regret to the known optimum {optimum:.4f} (floored at 1e-5)" if optimum is not None
            else "best reward so far")
    _plot_bands(runs, path, curves_of, seed, title, what, finish)


def plot_topk(runs: Sequence[Run], path: Path, k: int, seed: int = 0, optimum: float | None = None,
              title: str = "") -> None:
    """The poster's left figure: average reward of the top-k pipelines vs number of batches."""
    def finish(ax: Any) -> None:
        if optimum is not None:
            ax.axhline(optimum, color="grey", lw=1, linestyle=(0, (1, 1)), label="optimum (best single pipeline)")
        ax.set_xlabel("batches")
        ax.set_ylabel(f"average reward of the top-{k} pipelines so far")
        ax.grid(alpha=0.3, lw=0.5)

    _plot_bands(runs, path, lambda mine: _stack([topk_by_batch(r, k) for r in mine]), seed, title,
                f"the poster's top-{k} curve", finish)


def plot_batch_scatter(runs: Sequence[Run], path: Path, optimum: float | None = None, title: str = "") -> None:
    """The poster's right figure: every pipeline's reward per batch, one panel per learner, one
    colour per seed; the line is the batch's mean reward averaged over seeds."""
    plt = _pyplot()
    groups = _by_learner(runs)
    cols = min(len(groups), 4)
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows + 0.8), sharex=True, sharey=True,
                             squeeze=False)
    seeds = sorted({r.seed for r in runs})
    cmap = plt.get_cmap("viridis", max(len(seeds), 2))
    for ax, (learner, mine) in zip(axes.flat, groups.items()):
        for r in mine:
            ax.scatter(r.batches + 1, r.rewards, s=3, alpha=0.45, color=cmap(seeds.index(r.seed)), lw=0)
        n_batches = max(int(r.batches.max()) + 1 for r in mine)
        means = [np.mean([r.rewards[r.batches == b].mean() for r in mine if (r.batches == b).any()])
                 for b in range(n_batches)]
        ax.plot(np.arange(1, n_batches + 1), means, color="black", lw=1.2, label="batch mean, averaged over seeds")
        if optimum is not None:
            ax.axhline(optimum, color="#D55E00", lw=1, linestyle="--", label="optimum")
        ax.set_title(learner, fontsize=9)
        ax.grid(alpha=0.3, lw=0.5)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{title}\nreward of every evaluated pipeline by batch (the poster's scatter); "
                 f"dot colour: seed ({seeds[0]}..{seeds[-1]})", fontsize=9)
    fig.supxlabel("batch", fontsize=9, y=0.05)
    fig.supylabel("reward", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def marl_eval_json(runs: Sequence[Run], env_name: str, task_name: str) -> dict[str, Any]:
    """Curves in marl-eval's raw-data layout: env -> task -> algorithm -> run -> step_i / absolute_metrics."""
    algos: dict[str, Any] = {}
    for learner, mine in _by_learner(runs).items():
        entry = algos.setdefault(learner, {})
        for r in mine:
            best = best_so_far(r.rewards)
            steps = {}
            for b in range(int(r.batches.max()) + 1):
                mask = r.batches == b
                last = int(np.flatnonzero(mask)[-1])
                steps[f"step_{b}"] = {"step_count": last + 1, "return": r.rewards[mask].tolist(),
                                      "best_so_far": [float(best[last])]}
            steps["absolute_metrics"] = {"return": [float(best[-1])]}
            entry[f"run_{r.seed}"] = steps
    return {env_name: {task_name: algos}}


def write_report(runs: Sequence[Run], out: Path, env_name: str, optimum: float | None = None,
                 top1: float | None = None, k: int = 10, seed: int = 0) -> list[LearnerSummary]:
    """Write summary.md, the three figures, marl_eval.json and wall_seconds.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    summaries = summarize(runs, optimum, top1, seed=seed)
    budget = max(len(r.rewards) for r in runs)
    title = f"{env_name}: {len(summaries)} learners × {max(s.runs for s in summaries)} seeds, budget {budget}"
    notes = []
    if optimum is not None:
        notes.append(f"Optimum (known from the table): {optimum:.4f}.")
    if top1 is not None:
        notes.append(f"Top-1% threshold: {top1:.4f}.")
    (out / "summary.md").write_text(summary_markdown(summaries, title) + ("\n" + " ".join(notes) + "\n" if notes else ""))
    figure_title = f"{env_name}, budget {budget}, {max(s.runs for s in summaries)} seeds per learner"
    plot_best_so_far(runs, out / ("regret.png" if optimum is not None else "best_so_far.png"), optimum, seed,
                     title=figure_title)
    plot_topk(runs, out / f"top{k}.png", k, seed, optimum=optimum, title=figure_title)
    plot_batch_scatter(runs, out / "batch_scatter.png", optimum=optimum, title=figure_title)
    (out / "marl_eval.json").write_text(json.dumps(marl_eval_json(runs, env_name, "ma2ml"), indent=1))
    (out / "wall_seconds.json").write_text(json.dumps({s.learner: s.wall_seconds for s in summaries}, indent=1))
    return summaries
