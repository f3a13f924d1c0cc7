"""The tuned configurations (issue 27): one file per tuned learner, shipped with the package, equal to the
learner's config defaults, tuned on dev tasks and tuning seeds only, and what the committed sweep says."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from ma2ml.learners import TUNED_LEARNERS, learner_config, tuned_config
from ma2ml.suites import get_suite

pytest.importorskip("torchrl")  # mappo, ippo, qmix and vdn are among the tuned learners (extra "marl")

ROOT = Path(__file__).resolve().parent.parent
REPORTED_SEEDS = (range(3000, 3030), range(5000, 5030), range(7000, 7010))
"""Seeds of reported figures: per-table comparisons, the outside check, the suite comparison."""


@pytest.mark.parametrize("name", TUNED_LEARNERS)
def test_defaults_are_the_tuned_config(name: str) -> None:
    record = tuned_config(name)
    assert record is not None, f"no ma2ml/tuned/{name}.json"
    defaults = asdict(learner_config(name))
    assert {k: defaults[k] for k in record["config"]} == record["config"]
    assert record["config"] in record["tuned_on"]["grid"]
    assert record["previous_defaults"] == record["tuned_on"]["grid"][0]


@pytest.mark.parametrize("name", TUNED_LEARNERS)
def test_tuned_on_dev_tasks_and_tuning_seeds_only(name: str) -> None:
    on = tuned_config(name)["tuned_on"]
    suite, _ = get_suite(on["suite"].split(":")[0])
    dev = {t.name for t in suite.split("dev")}
    assert set(on["tasks"]) <= dev
    low, high = on["seeds"]
    assert not any(set(range(low, high + 1)) & set(seeds) for seeds in REPORTED_SEEDS)


def test_untuned_and_unknown_names() -> None:
    assert tuned_config("random") is None
    with pytest.raises(ValueError, match="unknown learner 'nope'"):
        tuned_config("nope")


def test_shipped_winners_are_the_committed_sweeps() -> None:
    """Each shipped config is the lowest IQM of its grid in the committed raw runs (the sweep's own rule)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import tune_learners
    finally:
        sys.path.pop(0)
    from ma2ml.suites import task_properties
    from ma2ml.suitestats import iqm

    rows = [json.loads(line) for line in (ROOT / "benchmarks/results/tuning/runs.jsonl").read_text().splitlines()]
    suite, split = get_suite(tune_learners.SUITE)
    scale = {t.name: max(task_properties(t)["random_regret"], 1e-12) for t in suite.split(split)}
    for name in TUNED_LEARNERS:
        grid = tune_learners.GRIDS[name]
        scores = [iqm(np.array([r["true_regret"] / scale[r["task"]] for r in rows
                                if r["learner"] == name and r["setting"] == setting])) for setting in grid]
        best = min(range(len(grid)), key=lambda i: (round(scores[i], 6), i))
        assert tuned_config(name)["config"] == grid[best], name
