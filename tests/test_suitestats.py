"""Specifications of ``ma2ml.suitestats``: suite-level statistics of a learner comparison."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from ma2ml.envs.core.errors import UserError
from ma2ml.figures import _cd_figure
from ma2ml.figures import plot_cd_diagram as cd_diagram
from ma2ml.suitestats import (Friedman, Interval, aggregate, average_ranks, friedman, iqm, probability_of_improvement,
                              ranks_over_budget, replication)


def _scores(rng: np.random.Generator, tasks: int, seeds: int, shift: float = 0.0) -> np.ndarray:
    return rng.normal(0.5 + shift, 0.2, size=(tasks, seeds))


def test_interval_prints_three_decimals():
    assert str(Interval(0.12345, 0.1, 0.15)) == "0.123 [0.100, 0.150]"


def test_iqm_of_a_known_array_is_the_mean_of_its_middle_half():
    x = np.array([[100.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, -50.0]])  # sorted: -50 1 2 3 4 5 6 100
    assert iqm(x) == pytest.approx(3.5)  # mean of 2 3 4 5
    assert iqm(np.arange(8.0)) == pytest.approx(3.5)


def test_aggregate_point_is_the_statistic_of_all_values_and_inside_its_interval():
    rng = np.random.default_rng(1)
    scores = {"a": _scores(rng, 6, 5), "b": _scores(rng, 6, 5, shift=0.3)}
    result = aggregate(scores, n_resamples=500)
    for name, arr in scores.items():
        assert result[name].value == pytest.approx(stats.trim_mean(arr.ravel(), 0.25))
        assert result[name].low <= result[name].value <= result[name].high
        assert result[name].low < result[name].high
    mean = aggregate(scores, statistic="mean", n_resamples=500)["a"]
    assert mean.value == pytest.approx(scores["a"].mean())


def test_aggregate_interval_narrows_with_more_seeds():
    rng = np.random.default_rng(2)
    few, many = rng.normal(0.5, 0.2, size=(5, 4)), rng.normal(0.5, 0.2, size=(5, 64))
    narrow = aggregate({"x": many}, n_resamples=500)["x"]
    wide = aggregate({"x": few}, n_resamples=500)["x"]
    assert narrow.high - narrow.low < 0.6 * (wide.high - wide.low)


def test_aggregate_is_stratified_by_task():
    """Tasks far apart but seeds identical within each task: resampling within tasks cannot move the mean,
    a pooled (unstratified) bootstrap would."""
    scores = {"x": np.repeat(np.array([[0.0], [1.0], [5.0]]), 4, axis=1)}
    result = aggregate(scores, statistic="mean", n_resamples=300)["x"]
    assert result.low == pytest.approx(2.0) and result.high == pytest.approx(2.0)


def test_aggregate_is_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    scores = {"a": _scores(rng, 4, 5)}
    assert aggregate(scores, n_resamples=300, seed=7) == aggregate(scores, n_resamples=300, seed=7)
    assert aggregate(scores, n_resamples=300, seed=7) != aggregate(scores, n_resamples=300, seed=8)


def test_aggregate_refuses_a_bad_statistic_and_bad_arrays():
    with pytest.raises(UserError, match="iqm, mean"):
        aggregate({"a": np.zeros((2, 2))}, statistic="median")
    with pytest.raises(UserError, match="NaN"):
        aggregate({"a": np.array([[0.1, np.nan], [0.2, 0.3]])})
    with pytest.raises(UserError, match="tasks, seeds"):
        aggregate({"a": np.zeros(3)})
    with pytest.raises(UserError, match="different numbers of tasks"):
        aggregate({"a": np.zeros((2, 2)), "b": np.zeros((3, 2))})


def test_probability_of_improvement_is_one_when_a_is_everywhere_lower():
    rng = np.random.default_rng(4)
    b = rng.uniform(0.5, 1.0, size=(5, 6))
    a = rng.uniform(0.0, 0.4, size=(5, 3))
    p = probability_of_improvement({"a": a, "b": b}, "a", "b", n_resamples=300)
    assert (p.value, p.low, p.high) == (1.0, 1.0, 1.0)
    q = probability_of_improvement({"a": a, "b": b}, "b", "a", n_resamples=300)
    assert (q.value, q.low, q.high) == (0.0, 0.0, 0.0)


def test_probability_of_improvement_is_about_half_for_equal_distributions():
    rng = np.random.default_rng(5)
    scores = {"a": _scores(rng, 20, 20), "b": _scores(rng, 20, 20)}
    p = probability_of_improvement(scores, "a", "b", n_resamples=500)
    assert p.value == pytest.approx(0.5, abs=0.06)
    assert p.low < 0.5 < p.high
    same = probability_of_improvement({"a": scores["a"], "b": scores["a"].copy()}, "a", "b", n_resamples=200)
    assert same.value == 0.5


def test_probability_of_improvement_is_the_mean_over_tasks_of_mann_whitney_and_counts_ties_half():
    a = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]])
    b = np.array([[0.2, 0.4], [0.5, 0.5]])
    expected = np.mean([stats.mannwhitneyu(-a[t], -b[t]).statistic / 6 for t in range(2)])
    p = probability_of_improvement({"a": a, "b": b}, "a", "b", n_resamples=200)
    assert p.value == pytest.approx(expected) == pytest.approx((4.5 / 6 + 0.5) / 2)
    assert p.low <= p.value <= p.high
    with pytest.raises(UserError, match="unknown learner"):
        probability_of_improvement({"a": a, "b": b}, "a", "c")


def test_average_ranks_of_a_hand_made_matrix_with_ties():
    means = np.array([[0.1, 0.5, 0.2],
                      [0.2, 0.5, 0.2],
                      [0.3, 0.1, 0.9]])
    # task 0: 1 2 3; task 1: 2.5 2.5 1; task 2: 1.5 1.5 3
    np.testing.assert_allclose(average_ranks(means), [5 / 3, 2.0, 7 / 3])


def test_ranks_over_budget_ranks_each_budget_point_by_the_seed_mean():
    # a is worse early and better late on both tasks; b the opposite.
    a = np.array([[[0.9, 0.1]], [[0.8, 0.2]]]).repeat(3, axis=1)
    b = np.array([[[0.5, 0.5]], [[0.5, 0.5]]]).repeat(2, axis=1)
    c = np.array([[[0.5, 0.9]], [[1.0, 0.9]]]).repeat(2, axis=1)
    ranks = ranks_over_budget({"a": a, "b": b, "c": c})
    np.testing.assert_allclose(ranks["a"], [2.5, 1.0])
    np.testing.assert_allclose(ranks["b"], [1.25, 2.0])
    np.testing.assert_allclose(ranks["c"], [2.25, 3.0])
    spread = {"d": np.array([[[0.0], [1.0]]]), "e": np.array([[[0.3], [0.3], [0.3]]])}  # means 0.5 and 0.3
    assert ranks_over_budget(spread) == {"d": pytest.approx([2.0]), "e": pytest.approx([1.0])}
    with pytest.raises(UserError, match="budget points"):
        ranks_over_budget({"a": a, "b": b[:, :, :1]})


def _clear_ordering(k: int = 4, tasks: int = 12, seed: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"L{i}": i * 0.2 + rng.normal(0, 0.05, size=tasks) for i in range(k)}


def test_friedman_detects_a_clear_ordering_with_the_nemenyi_cd():
    result = friedman(_clear_ordering())
    assert result.pvalue < 1e-4
    assert list(result.ranks) == ["L0", "L1", "L2", "L3"]
    assert result.tasks == 12 and result.alpha == 0.05
    assert result.cd == pytest.approx(2.569 * math.sqrt(4 * 5 / 72), abs=5e-3)
    assert round(result.cd, 2) == 1.35


def test_friedman_ranks_and_pvalue_agree_with_scipy():
    means = _clear_ordering(k=5, tasks=8, seed=9)
    means["L1"], means["L3"] = means["L3"], means["L1"] + 0.01
    result = friedman(means)
    assert result.pvalue == pytest.approx(stats.friedmanchisquare(*means.values()).pvalue)
    assert list(result.ranks) == ["L0", "L3", "L2", "L1", "L4"]


def test_friedman_needs_three_learners_and_two_tasks():
    with pytest.raises(UserError, match="2 learners and 12 tasks"):
        friedman({"a": np.zeros(12), "b": np.ones(12)})
    with pytest.raises(UserError, match="3 learners and 1 tasks"):
        friedman({"a": [0.0], "b": [1.0], "c": [2.0]})


def _result(ranks: dict[str, float], cd: float) -> Friedman:
    return Friedman(statistic=10.0, pvalue=0.01, ranks=ranks, cd=cd, alpha=0.05, tasks=20)


def test_cliques_group_learners_within_cd():
    result = _result({"a": 1.0, "b": 1.5, "c": 2.2, "d": 3.0, "e": 4.5}, cd=1.0)
    assert result.cliques() == [("a", "b"), ("b", "c"), ("c", "d")]
    assert _result({"a": 1.0, "b": 2.0, "c": 3.0}, cd=0.5).cliques() == []
    assert _result({"a": 1.0, "b": 2.0, "c": 3.0}, cd=1.0).cliques() == []  # a difference of exactly CD is significant
    assert _result({"a": 1.0, "b": 2.0, "c": 3.0}, cd=5.0).cliques() == [("a", "b", "c")]
    assert _result({"a": 1.0, "b": 1.9, "c": 1.95, "d": 2.8}, cd=1.0).cliques() == [("a", "b", "c"), ("b", "c", "d")]


def _overlapping_labels(fig) -> list[tuple[str, str]]:
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent"))
             if t.get_text() and t.get_visible()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


@pytest.mark.parametrize("names", [
    [f"L{i}" for i in range(4)],
    ["ma2ml", "random_search", "a_learner_with_a_very_long_name_indeed", "smac", "tpe", "x", "hyperband_lite"],
])
def test_cd_diagram_labels_do_not_overlap(names):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(10)
    means = {name: i * 0.05 + rng.normal(0, 0.1, size=10) for i, name in enumerate(names)}
    fig = _cd_figure(friedman(means), title="Suite shapes, 10 tasks")
    try:
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert len(texts) == len(names) + len(names) + 2  # labels, tick numbers, CD, title
        assert _overlapping_labels(fig) == []
    finally:
        plt.close(fig)


def test_the_layout_check_catches_overlap():
    import matplotlib.pyplot as plt

    fig = _cd_figure(_result({"a": 1.0, "b": 1.5, "c": 2.0}, cd=1.0))
    try:
        fig.axes[0].text(1.0, -0.12, "planted", ha="center", va="bottom")
        assert ("1", "planted") in _overlapping_labels(fig)
    finally:
        plt.close(fig)


def test_cd_diagram_writes_a_png(tmp_path):
    result = friedman(_clear_ordering(k=5))
    path = cd_diagram(result, tmp_path / "cd.png", title="clear")
    assert path == tmp_path / "cd.png"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000


def test_replication_of_identical_and_reversed_seed_sets():
    rng = np.random.default_rng(11)
    a = {f"L{i}": i * 0.3 + rng.normal(0, 0.05, size=(6, 3)) for i in range(4)}
    spearman, order_a, order_b = replication(a, a)
    assert spearman == pytest.approx(1.0)
    assert order_a == order_b == ["L0", "L1", "L2", "L3"]
    reversed_b = {name: -arr for name, arr in a.items()}
    spearman, order_a, order_b = replication(a, reversed_b)
    assert spearman == pytest.approx(-1.0)
    assert order_b == ["L3", "L2", "L1", "L0"]
    with pytest.raises(UserError, match="different learners"):
        replication(a, {"L0": a["L0"]})
