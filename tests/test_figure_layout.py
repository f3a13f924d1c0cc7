"""Every figure of a comparison report, rendered at its saved size, keeps its text on the canvas and apart
(issue 28, item 3): no clipped label, no label under a legend."""
from __future__ import annotations

import numpy as np
import pytest

from ma2ml import figures
from ma2ml.report import Run, write_report

LEARNERS = ("ma2ml", "ma2ml-onpolicy", "ma2ml-lite", "reinforce", "ppo", "a2c", "random", "evolution", "independent",
            "tpe", "mappo", "ippo")


def _runs(learners, seeds, budget=60, batch=10, truth=True):
    rng = np.random.default_rng(0)
    runs = []
    for i, learner in enumerate(learners):
        for seed in range(seeds):
            rewards = np.clip(rng.normal(0.8 + 0.01 * i, 0.05, budget), 0, 0.99)
            runs.append(Run(learner, 3000 + seed, rewards, np.arange(budget) // batch,
                            train_seconds=rng.uniform(0.5, 2.0, budget),
                            true_rewards=rewards - 0.01 if truth else None))
    return runs


@pytest.fixture
def rendered(monkeypatch):
    """name -> layout problems of every figure saved while the fixture is active."""
    seen: dict[str, list[str]] = {}
    save = figures._save

    def checked(fig, path):
        seen[path.name] = figures.layout_problems(fig)
        save(fig, path)

    monkeypatch.setattr(figures, "_save", checked)
    return seen


@pytest.mark.parametrize("learners, seeds, known", [(LEARNERS[:3], 5, True), (LEARNERS, 30, True),
                                                      (LEARNERS[:2], 3, False)],
                         ids=["3 learners", "12 learners x 30 seeds", "no optimum"])
def test_every_figure_keeps_its_text_on_the_canvas_and_apart(tmp_path, rendered, learners, seeds, known):
    runs = _runs(learners, seeds, truth=known)
    write_report(runs, tmp_path, "ma2ml/AutoML-DigitsHard-v0", optimum=1.0 if known else None,
                 top1=0.95 if known else None, budgets=[10, 30], true_optimum=0.99 if known else None, noisy=known)
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert pngs and pngs == set(rendered), (pngs, set(rendered))
    assert {name: problems for name, problems in rendered.items() if problems} == {}


def test_the_layout_check_catches_a_clipped_and_an_overlapping_label():
    plt = figures._pyplot()
    fig, axes = figures._figure(plt, figsize=(3, 2))
    ax = axes[0, 0]
    ax.text(0.5, 0.5, "a label", transform=ax.transAxes)
    ax.text(0.5, 0.5, "another label", transform=ax.transAxes)
    fig.text(0.95, 0.5, "far too long a label to fit on this canvas")
    problems = figures.layout_problems(fig)
    plt.close(fig)
    assert any("overlaps" in p for p in problems) and any("outside the canvas" in p for p in problems)


def test_the_scatter_has_a_key_for_its_seed_colours(tmp_path, rendered):
    runs = _runs(LEARNERS[:2], 4)
    figures.plot_batch_scatter(runs, tmp_path / "s.png", optimum=1.0, title="t")
    assert rendered["s.png"] == []
    text = (tmp_path / "s.png").stat().st_size
    assert text > 0
