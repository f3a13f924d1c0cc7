"""Comparison statistics against values computed by hand on a tiny fixed input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ma2ml.report import (Run, best_so_far, bootstrap_ci, evals_to_reach, iqm, marl_eval_json, summarize,
                          summary_markdown, topk_by_batch, write_report)


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


def test_summary_values():
    a, b = summarize(_runs(), optimum=1.0, top1=0.75)
    assert a.final_mean == pytest.approx((0.9 + 0.8) / 2) and b.final_mean == pytest.approx((0.3 + 0.7) / 2)
    assert a.regret_mean == pytest.approx(1.0 - 0.85)
    assert a.evals_to_top1_median == pytest.approx((4 + 3) / 2) and a.top1_reached == 2
    assert b.top1_reached == 0 and np.isinf(b.evals_to_top1_median)
    assert a.wall_seconds == pytest.approx(3.0)
    table = summary_markdown([a, b])
    assert "**a** ★" in table and "not reached" in table and "0/2" in table


def test_marl_eval_layout():
    data = marl_eval_json(_runs(), "env", "task")
    run = data["env"]["task"]["a"]["run_0"]
    assert run["step_1"]["step_count"] == 4 and run["step_1"]["best_so_far"] == [0.9]
    assert run["absolute_metrics"]["return"] == [0.9]


def test_write_report_files(tmp_path):
    write_report(_runs(), tmp_path, "env", optimum=1.0, top1=0.75, k=2)
    for name in ("summary.md", "regret.png", "top2.png", "batch_scatter.png", "marl_eval.json"):
        assert (tmp_path / name).stat().st_size > 0
    json.loads((tmp_path / "marl_eval.json").read_text())
