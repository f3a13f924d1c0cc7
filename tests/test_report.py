"""Comparison statistics against values computed by hand on a tiny fixed input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ma2ml.figures import topk_by_batch
from ma2ml.report import (Run, budget_points, compare_runs, evals_to_reach, marl_eval_json, recommendation_index,
                          summary_markdown, write_report)
from ma2ml.stats import best_so_far, bootstrap_ci, iqm


def _runs():
    # learner a: two seeds; learner b: two seeds; batches of 2 evaluations
    return [
        Run("a", 0, np.array([0.1, 0.5, 0.3, 0.9]), np.array([0, 0, 1, 1]), 2.0),
        Run("a", 1, np.array([0.2, 0.4, 0.8, 0.6]), np.array([0, 0, 1, 1]), 4.0),
        Run("b", 0, np.array([0.3, 0.3, 0.3, 0.3]), np.array([0, 0, 1, 1]), 1.0),
        Run("b", 1, np.array([0.1, 0.2, 0.5, 0.7]), np.array([0, 0, 1, 1]), 1.0),
    ]


def test_hand_computed_statistics():
    assert best_so_far(np.array([0.1, 0.5, 0.3, 0.9])).tolist() == [0.1, 0.5, 0.5, 0.9]
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert evals_to_reach(np.array([0.1, 0.5, 0.3, 0.9]), 0.8) == 4
    assert evals_to_reach(np.array([0.1]), 0.8) is None
    # top-2 average per batch: batch 0 -> (0.5 + 0.1) / 2, batch 1 -> (0.9 + 0.5) / 2
    assert topk_by_batch(_runs()[0], 2).tolist() == pytest.approx([0.3, 0.7])
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    lo, hi = bootstrap_ci([0.0, 1.0] * 10)
    assert lo < 0.5 < hi and 0.2 < lo and hi < 0.8


def test_recommendation_is_the_first_best_observed():
    rewards = np.array([0.2, 0.5, 0.5, 0.4, 0.7, 0.7])
    assert recommendation_index(rewards).tolist() == [0, 1, 1, 1, 4, 4]  # ties keep the earliest
    run = Run("a", 0, rewards, np.zeros(6, dtype=int))
    assert run.recommended() == 4 and run.recommended(3) == 1


def test_budget_points_keep_those_below_the_budget_and_add_it():
    assert budget_points(260) == [25, 50, 100, 200, 260]
    assert budget_points(60) == [25, 50, 60]
    assert budget_points(50) == [25, 50]
    assert budget_points(10) == [10]
    assert budget_points(100, (100, 7, 7)) == [7, 100]


def test_summary_values():
    c = compare_runs(_runs(), optimum=1.0, top1=0.75, budgets=(2,))
    a, b = c.learners
    assert c.budgets == [2, 4]
    assert a.best_reward.value == pytest.approx((0.9 + 0.8) / 2) and b.best_reward.value == pytest.approx(0.5)
    # simple regret after 2 and 4 evaluations: a: (0.5, 0.1) and (0.6, 0.2); b: (0.7, 0.7) and (0.8, 0.3)
    assert [i.value for i in a.anytime["regret"]] == pytest.approx([0.55, 0.15])
    assert [i.value for i in b.anytime["regret"]] == pytest.approx([0.75, 0.5])
    # area: the mean regret over evaluations 1..4; a seed 0: (0.9 + 0.5 + 0.5 + 0.1) / 4 = 0.5
    assert a.area["regret"].value == pytest.approx((0.5 + (0.8 + 0.6 + 0.2 + 0.2) / 4) / 2)
    assert a.evals_to_top1_median == pytest.approx((4 + 3) / 2) and a.top1_reached == 2
    assert b.top1_reached == 0 and np.isinf(b.evals_to_top1_median)
    assert a.wall_seconds == pytest.approx(3.0)
    # no ground truth: the score is the best observed reward (higher is better)
    assert c.score.key == "return" and not c.score.lower_is_better and c.ranking == ["a", "b"]
    table = summary_markdown(c)
    assert "not reached" in table and "0/2" in table and "n = 2" in table and "n = 4" in table
    # a's finals (0.9, 0.8) bootstrap to [0.8, 0.9], b's (0.3, 0.7) to [0.3, 0.7]: clear of each other
    assert "| **a** ★ |" in table and "Best learner: **a** ★" in table and c.best == "a"
    # one seed per learner: a bootstrap "interval" is a point, so no star however far apart
    one = compare_runs([r for r in _runs() if r.seed == 0], optimum=1.0, budgets=(2,))
    assert one.best is None and "one seed has no interval; no star" in one.verdict()


def test_marl_eval_layout():
    c = compare_runs(_runs(), optimum=1.0, budgets=(2,))
    data = marl_eval_json(_runs(), "env", "task", c)
    run = data["env"]["task"]["a"]["run_0"]
    assert list(run) == ["step_0", "step_1", "absolute_metrics"]
    assert run["step_0"] == {"step_count": 2, "return": [0.5], "regret": [0.5]}
    assert run["step_1"]["step_count"] == 4 and run["step_1"]["return"] == [0.9]
    assert run["absolute_metrics"]["return"] == [0.9]
    assert run["absolute_metrics"]["regret"] == [pytest.approx(0.1)]


def test_write_report_files(tmp_path):
    write_report(_runs(), tmp_path, "env", optimum=1.0, top1=0.75, k=2)
    for name in ("summary.md", "regret.png", "top2.png", "batch_scatter.png", "anytime.png",
                 "performance_profile.png", "marl_eval.json", "per_run.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert not (tmp_path / "best_so_far_seconds.png").exists()  # no training seconds recorded
    json.loads((tmp_path / "marl_eval.json").read_text())
