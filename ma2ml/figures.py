"""The figures of a comparison (matplotlib, Agg backend; colour-blind-safe styles): best-so-far
regret with bootstrap bands (per evaluation and per training second), the poster's top-k and
per-batch scatter figures, the anytime plot and the performance profile; and a suite's average ranks
over the budget and its critical-difference diagram.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ma2ml.stats import best_so_far, curve_band

if TYPE_CHECKING:
    from ma2ml.report import Comparison, Run
    from matplotlib.figure import Figure

    from ma2ml.suitestats import Friedman

def by_learner(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs grouped by learner, in order of first appearance."""
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.learner, []).append(r)
    return out


def topk_by_batch(run: Run, k: int) -> np.ndarray:
    """Average reward of the top-k pipelines found up to each batch (the poster's left figure)."""
    out = []
    for b in range(int(run.batches.max()) + 1):
        seen = np.sort(run.rewards[run.batches <= b])[::-1]
        out.append(seen[:k].mean())
    return np.array(out)


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


def _band(ax: Any, curves: np.ndarray, label: str, style: dict[str, Any], seed: int,
          x: np.ndarray | None = None) -> None:
    """The mean over runs (rows) as a line and its 95% bootstrap band (x: 1, 2, ... unless given)."""
    mean, lo, hi = curve_band(curves, seed=seed)
    x = np.arange(1, len(mean) + 1) if x is None else x
    ax.plot(x, mean, label=label, lw=1.6, **style)
    ax.fill_between(x, lo, hi, alpha=0.12, color=style["color"], lw=0)


def _legend_outside(fig: Any, ax: Any) -> None:
    """The legend of ``ax``'s lines below the axes, in columns (the figure's constrained layout makes room; the
    title spans the top)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=min(len(labels), 3), frameon=False)


def _titles(fig: Any, title: str, *lines: str, width: int = 95) -> None:
    """The figure's title (bold) over its explanation lines, wrapped to the figure's width, above everything
    (the legend included)."""
    import textwrap

    fig.suptitle("\n".join([textwrap.fill(title, width)] + [textwrap.fill(s, width + 15) for s in lines if s]),
                 fontsize=9)


def _legend_height(entries: int) -> float:
    """Inches a legend of ``entries`` lines in three columns below the axes adds to a figure's height."""
    return 0.22 * math.ceil(entries / 3)


def _figure(plt: Any, rows: int = 1, cols: int = 1, figsize: tuple[float, float] = (7.6, 4.4), **kwargs: Any) -> Any:
    """A figure with matplotlib's constrained layout (labels, titles and outside legends never clipped)."""
    return plt.subplots(rows, cols, figsize=figsize, layout="constrained", squeeze=False, **kwargs)


def layout_problems(fig: Any) -> list[str]:
    """What is wrong with a figure's text at its size: a visible text (title, label, tick label, legend entry)
    outside the canvas, or two texts that overlap (tick labels of one axis excepted: they are laid out by
    matplotlib's locator). Empty when the layout is clean."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    texts = []
    for artist in fig.findobj(Text):
        if not artist.get_visible() or not artist.get_text().strip() or artist.axes is not None and \
                not artist.axes.get_visible():
            continue
        box = artist.get_window_extent(renderer)
        if box.width <= 0 or box.height <= 0:
            continue
        texts.append((artist, box))
    ticks, undrawn = set(), set()  # tick labels; those of ticks outside the view (kept, never drawn)
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        for axis, inside in ((ax.xaxis, lambda b: frame.x0 - 1 <= (b.x0 + b.x1) / 2 <= frame.x1 + 1),
                             (ax.yaxis, lambda b: frame.y0 - 1 <= (b.y0 + b.y1) / 2 <= frame.y1 + 1)):
            for label in axis.findobj(Text):
                if label is axis.label:
                    continue
                ticks.add(id(label))
                if label is not axis.offsetText and not inside(label.get_window_extent(renderer)):
                    undrawn.add(id(label))
    texts = [(a, box) for a, box in texts if id(a) not in undrawn]
    problems = []
    for artist, box in texts:
        if box.x0 < canvas.x0 - 1 or box.y0 < canvas.y0 - 1 or box.x1 > canvas.x1 + 1 or box.y1 > canvas.y1 + 1:
            problems.append(f"{artist.get_text()!r} lies outside the canvas")
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1:]:
            if id(a) in ticks and id(b) in ticks:
                continue
            inter = box_a.intersection(box_a, box_b)
            if inter is not None and inter.width > 1 and inter.height > 1:
                problems.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    return problems


def _save(fig: Any, path: Path) -> None:
    """Write a figure (PNG at 120 dpi) and close it."""
    plt = _pyplot()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_bands(runs: Sequence[Run], path: Path, curves_of: Any, seed: int, title: str, subtitle: str,
                finish: Any, x: np.ndarray | None = None) -> None:
    """One banded line per learner (``curves_of(its runs)`` -> curves, one row per run, over ``x``);
    ``finish(ax)`` sets the axes; the titles, legend and file are common to every banded figure."""
    plt = _pyplot()
    groups = by_learner(runs)
    styles = learner_styles(list(groups))
    fig, axes = _figure(plt, figsize=(7.6, 4.4 + _legend_height(len(groups))))
    ax = axes[0, 0]
    for learner, mine in groups.items():
        _band(ax, curves_of(mine), f"{learner} ({len(mine)} seeds)", styles[learner], seed, x)
    finish(ax)
    _titles(fig, title, subtitle, "line: mean over seeds; band: 95% bootstrap CI of the mean")
    _legend_outside(fig, ax)
    _save(fig, path)


def _regret_axes(optimum: float | None, xlabel: str) -> Callable[[Any], None]:
    def finish(ax: Any) -> None:
        ax.set_xlabel(xlabel)
        if optimum is not None:
            ax.set_yscale("log")
        ax.set_ylabel("simple regret (optimum − best so far)" if optimum is not None else "best reward so far")
        ax.grid(alpha=0.3, which="both", lw=0.5)

    return finish


def _regret_subtitle(optimum: float | None) -> str:
    return (f"simple regret to the known optimum {optimum:.4f} (floored at 1e-5)" if optimum is not None
            else "best reward so far")


def _regret_or_best(curves: np.ndarray, optimum: float | None) -> np.ndarray:
    return np.maximum(optimum - curves, 1e-5) if optimum is not None else curves


def plot_best_so_far(runs: Sequence[Run], path: Path, optimum: float | None = None, seed: int = 0,
                     title: str = "") -> None:
    """Best-so-far (or simple regret when ``optimum`` is known, log scale) vs evaluations, bootstrap bands."""
    _plot_bands(runs, path, lambda mine: _regret_or_best(_stack([best_so_far(r.rewards) for r in mine]), optimum),
                seed, title, _regret_subtitle(optimum), _regret_axes(optimum, "evaluations (pipelines trained)"))


def plot_true_regret(runs: Sequence[Run], path: Path, curve: Callable[[Run], np.ndarray], seed: int = 0,
                     title: str = "") -> None:
    """The true regret of each run's recommendation (``curve``: a run -> its value after each evaluation) vs
    evaluations, bootstrap bands, on a symmetric-log axis: linear below 0.01, so zero (the optimum found)
    stays visible, unlike a log axis."""
    def finish(ax: Any) -> None:
        ax.set_xlabel("evaluations (pipelines trained)")
        ax.set_ylabel("true regret of the recommendation")
        ax.set_yscale("symlog", linthresh=1e-2, linscale=2.0)  # linear near 0 (zero stays visible), log above
        ax.set_ylim(bottom=0.0)
        ax.grid(alpha=0.3, which="both", lw=0.5)

    _plot_bands(runs, path, lambda mine: _stack([curve(r) for r in mine]), seed, title,
                "true regret: the best ground truth minus that of the pipeline each run recommends", finish)


def plot_best_so_far_seconds(runs: Sequence[Run], path: Path, optimum: float | None = None, seed: int = 0,
                             title: str = "") -> None:
    """Best-so-far (or simple regret) vs cumulative training seconds (every run needs ``train_seconds``):
    each run's curve is read on a shared log grid from the latest first evaluation to the longest run."""
    totals = [np.cumsum(r.train_seconds) for r in runs]
    start, end = max(t[0] for t in totals), max(t[-1] for t in totals)
    grid = np.geomspace(max(start, 1e-9), max(end, start, 1e-9), 200)
    at = {id(r): best_so_far(r.rewards)[np.searchsorted(t, grid, side="right") - 1] for r, t in zip(runs, totals)}

    def finish(ax: Any) -> None:
        _regret_axes(optimum, "cumulative training seconds (summed over evaluations)")(ax)
        ax.set_xscale("log")

    _plot_bands(runs, path, lambda mine: _regret_or_best(np.stack([at[id(r)] for r in mine]), optimum), seed,
                title, _regret_subtitle(optimum) + " vs the training seconds the evaluations took", finish, grid)


def plot_topk(runs: Sequence[Run], path: Path, k: int, seed: int = 0, optimum: float | None = None,
              title: str = "") -> None:
    """Average reward of the k best pipelines found so far vs number of batches (the poster's left figure)."""
    def finish(ax: Any) -> None:
        if optimum is not None:
            ax.axhline(optimum, color="grey", lw=1, linestyle=(0, (1, 1)), label="optimum (best single pipeline)")
        ax.set_xlabel("batches")
        ax.set_ylabel(f"average reward of the top-{k} pipelines so far")
        ax.grid(alpha=0.3, lw=0.5)

    _plot_bands(runs, path, lambda mine: _stack([topk_by_batch(r, k) for r in mine]), seed, title,
                f"average reward of the {k} best pipelines found so far", finish)


def plot_anytime(c: Comparison, path: Path, title: str = "") -> None:
    """One panel per tabulated metric: mean and 95% CI per learner at each budget point (log x;
    learners dodged sideways so their bars do not hide each other)."""
    plt = _pyplot()
    styles = learner_styles([s.learner for s in c.learners])
    fig, axes = _figure(plt, 1, len(c.tabulated),
                        figsize=(4.6 * len(c.tabulated) + 1.8, 4.2 + _legend_height(len(c.learners))))
    budgets = np.array(c.budgets, dtype=float)
    for ax, m in zip(axes.flat, c.tabulated):
        for i, s in enumerate(c.learners):
            x = budgets * 1.04 ** (i - (len(c.learners) - 1) / 2)
            iv = s.anytime[m.key]
            mean = np.array([v.value for v in iv])
            err = np.array([[v.value - v.low for v in iv], [v.high - v.value for v in iv]])
            ax.errorbar(x, mean, yerr=err, label=s.learner, capsize=2, marker="o", ms=3, lw=1.2, **styles[s.learner])
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in c.budgets])
        ax.minorticks_off()
        ax.set_xlabel("evaluations (budget)")
        ax.set_ylabel(f"{m.name} {m.arrow}")
        ax.grid(alpha=0.3, lw=0.5)
    fig.suptitle(f"{title}\npoint: mean over seeds; bar: 95% bootstrap CI of the mean", fontsize=9)
    _legend_outside(fig, axes.flat[-1])
    _save(fig, path)


def plot_performance_profile(c: Comparison, path: Path, seed: int = 0, title: str = "") -> None:
    """rliable's performance profile of the score: the fraction of runs better than tau (score <= tau
    for a lower-is-better score, > tau otherwise) vs tau, with a 95% bootstrap band over runs."""
    plt = _pyplot()
    m = c.score
    every = np.concatenate([s.scores for s in c.learners])
    lo, hi = float(every.min()), float(every.max())
    taus = np.linspace(lo, hi if hi > lo else lo + 1e-3, 201)
    styles = learner_styles([s.learner for s in c.learners])
    fig, axes = _figure(plt, figsize=(7.6, 4.4 + _legend_height(len(c.learners))))
    ax = axes[0, 0]
    for s in c.learners:
        better = s.scores[:, None] <= taus if m.lower_is_better else s.scores[:, None] > taus
        _band(ax, better.astype(float), f"{s.learner} ({s.runs} seeds)", styles[s.learner], seed, taus)
    ax.set_xlabel(f"τ ({m.name})")
    ax.set_ylabel(f"fraction of runs {'≤' if m.lower_is_better else '>'} τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3, lw=0.5)
    _titles(fig, title, f"performance profile of the {m.name} at {c.budgets[-1]} evaluations",
            "line: fraction of runs; band: 95% bootstrap CI over runs")
    _legend_outside(fig, ax)
    _save(fig, path)


def plot_batch_scatter(runs: Sequence[Run], path: Path, optimum: float | None = None, title: str = "") -> None:
    """Every evaluated pipeline's reward per batch, one panel per learner, one colour per seed (the colour bar is
    the key); the line is the batch's mean reward averaged over seeds (the poster's right figure)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    plt = _pyplot()
    groups = by_learner(runs)
    cols = min(len(groups), 4)
    rows = math.ceil(len(groups) / cols)
    fig, axes = _figure(plt, rows, cols, figsize=(3.3 * cols + 1.2, 2.9 * rows + 1.2), sharex=True, sharey=True)
    seeds = sorted({r.seed for r in runs})
    # viridis without its pale yellow end, so every seed's dots stay visible on white
    cmap = ListedColormap(plt.get_cmap("viridis")(np.linspace(0.0, 0.82, max(len(seeds), 2))))
    for ax, (learner, mine) in zip(axes.flat, groups.items()):
        for r in mine:
            ax.scatter(r.batches + 1, r.rewards, s=4, alpha=0.6, color=cmap(seeds.index(r.seed)), lw=0)
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
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    key = fig.colorbar(ScalarMappable(BoundaryNorm(np.arange(len(seeds) + 1) - 0.5, cmap.N), cmap),
                       ax=axes.ravel().tolist(), fraction=0.04, pad=0.02)
    step = max(1, math.ceil(len(seeds) / 8))
    key.set_ticks(range(0, len(seeds), step), labels=[str(seeds[k]) for k in range(0, len(seeds), step)])
    key.ax.tick_params(labelsize=7)
    key.set_label("seed (dot colour)", fontsize=8)
    fig.suptitle(f"{title}\nreward of every evaluated pipeline, by batch", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("batch", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("reward", fontsize=9)
    _save(fig, path)


def plot_average_ranks(fractions: Sequence[float], ranks: dict[str, Sequence[float]], path: Path,
                       title: str = "") -> None:
    """Each learner's average rank over a suite's tasks (1 = best, at the top) at each fraction of the tasks'
    budgets."""
    plt = _pyplot()
    styles = learner_styles(list(ranks))
    fig, axes = _figure(plt, figsize=(7.0, 4.5 + _legend_height(len(ranks))))
    ax = axes[0, 0]
    for name, values in ranks.items():
        ax.plot([100 * f for f in fractions], values, marker="o", label=name, **styles[name])
    ax.set_xlabel("% of each task's budget")
    ax.set_ylabel("average rank over tasks (1 = best)")
    ax.invert_yaxis()
    ax.grid(alpha=0.3, lw=0.5)
    _titles(fig, title)
    _legend_outside(fig, ax)
    _save(fig, path)


# -- a suite's critical-difference diagram (Demsar 2006) ---------------------------------------------------
_FONT = 10
"""Font size (points) of the diagram's labels."""
_CHAR_IN = 0.6 * _FONT / 72
"""Approximate width of one label character in inches."""
_ROW_IN = 0.28
"""Vertical distance between two learners' label rows, inches."""
_CLIQUE_IN = 0.12
"""Vertical distance between two clique bars, inches."""


def _cd_figure(result: Friedman, title: str = "") -> Figure:
    """The critical-difference diagram of ``result`` as a matplotlib Figure (see :func:`plot_cd_diagram`).

    The axes fill the figure and one data unit is one inch vertically (y grows downwards), so every row
    of text sits a fixed, font-sized distance from the next.
    """
    plt = _pyplot()
    names = list(result.ranks)
    rank = np.array([result.ranks[name] for name in names])
    k = len(names)
    labels = [f"{name} ({r:.2f})" for name, r in zip(names, rank)]
    label_in = _CHAR_IN * max(map(len, labels)) + 0.4
    axis_in = max(3.0, 0.6 * (k - 1))
    unit = (k - 1) / axis_in  # rank units per inch
    cliques = result.cliques()
    first_row = 0.25 + _CLIQUE_IN * len(cliques) + 0.15
    n_left = (k + 1) // 2
    bottom = first_row + _ROW_IN * (max(n_left, k - n_left) - 1) + 0.2
    top = -1.3 if title else -0.95

    fig = plt.figure(figsize=(axis_in + 2 * label_in, bottom - top))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(1 - label_in * unit, k + label_in * unit)
    ax.set_ylim(bottom, top)

    line = {"color": "black", "linewidth": 1.0}
    ax.plot([1, k], [0, 0], **line)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, -0.08], **line)
        ax.text(tick, -0.12, str(tick), ha="center", va="bottom", fontsize=_FONT - 1)
    cd_y = -0.6
    ax.plot([1, 1 + result.cd], [cd_y, cd_y], color="black", linewidth=1.5)
    for end in (1, 1 + result.cd):
        ax.plot([end, end], [cd_y - 0.05, cd_y + 0.05], **line)
    ax.text(1 + result.cd / 2, cd_y - 0.08, f"CD = {result.cd:.3f}", ha="center", va="bottom", fontsize=_FONT - 1)
    if title:
        ax.text((1 + k) / 2, top + 0.05, title, ha="center", va="top", fontsize=_FONT + 1, fontweight="bold")

    for i, members in enumerate(cliques):
        y = 0.25 + _CLIQUE_IN * i
        ax.plot([result.ranks[members[0]] - 0.03 * unit, result.ranks[members[-1]] + 0.03 * unit], [y, y],
                color="black", linewidth=4, solid_capstyle="butt")

    # The better half is labelled at the left, best on the top row; the rest at the right, worst on the top
    # row, so that no learner's horizontal line crosses another's vertical one.
    rows = list(range(n_left)) + list(range(k - n_left - 1, -1, -1))
    for i, (r, label, row) in enumerate(zip(rank, labels, rows)):
        y = first_row + _ROW_IN * row
        left = i < n_left
        x_end = 1 - 0.15 * unit if left else k + 0.15 * unit
        ax.plot([r, r, x_end], [0, y, y], **line)
        ax.text(x_end - 0.05 * unit if left else x_end + 0.05 * unit, y, label, ha="right" if left else "left",
                va="center", fontsize=_FONT)
    return fig


def plot_cd_diagram(result: Friedman, path: str | Path, title: str = "") -> Path:
    """Draw the critical-difference diagram (Demsar 2006) of ``result`` to the PNG ``path`` and return it.

    A rank axis 1..k (best at left); each learner a line from its average rank to its label
    "name (rank)", the better half labelled at the left and the rest at the right; a bar of length CD
    above the axis; and a thick line joining the learners of each clique (no significant difference).
    The figure's size follows k and the longest label, so no two labels overlap.
    """
    plt = _pyplot()
    path = Path(path)
    fig = _cd_figure(result, title)
    try:
        fig.savefig(path, format="png", dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


# -- the report -----------------------------------------------------------------------------------------
