"""The comparison protocol of ``ma2ml compare``: probability of improvement, the star rule, the power
estimate, the recommendation scored on the table's ground truth, and marl-eval's layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from ma2ml.comparison import known_reference, known_truth
from ma2ml.envs import make_parallel
from ma2ml.report import Run, compare_runs, marl_eval_json, per_run_json, power_row, summary_markdown
from ma2ml.stats import probability_of_improvement, seeds_needed


def _runs_with_finals(finals: dict[str, list[float]]) -> list[Run]:
    """One one-evaluation run per (learner, seed), whose best observed reward is the given final."""
    return [Run(name, seed, np.array([v]), np.array([0])) for name, values in finals.items()
            for seed, v in enumerate(values)]


# -- probability of improvement ------------------------------------------------------------------------
def test_probability_of_improvement_by_hand():
    x, y = [1.0, 2.0, 3.0], [2.0, 2.0, 0.0]
    # pairs with x > y: (1, 0), (2, 0), (3, 2), (3, 2), (3, 0) = 5 of 9; ties: (2, 2), (2, 2) count half
    p = probability_of_improvement(x, y)
    assert p.value == pytest.approx(6 / 9)
    assert p.value == pytest.approx(stats.mannwhitneyu(x, y).statistic / 9)
    assert 0.0 <= p.low <= p.value <= p.high <= 1.0 and p.low < p.high
    assert probability_of_improvement(x, y, lower_is_better=True).value == pytest.approx(3 / 9)
    assert probability_of_improvement([0.0] * 4, [1.0] * 4).value == 0.0
    same = probability_of_improvement([0.5] * 4, [0.5] * 4)
    assert (same.value, same.low, same.high) == (0.5, 0.5, 0.5)


def test_improvement_matrix_is_complementary():
    c = compare_runs(_runs_with_finals({"a": [0.1, 0.5, 0.4, 0.3], "b": [0.2, 0.3, 0.3, 0.6]}))
    ab, ba = c.improvement["a", "b"], c.improvement["b", "a"]
    assert ab.value + ba.value == pytest.approx(1.0)
    assert ab.low == pytest.approx(1 - ba.high) and ab.high == pytest.approx(1 - ba.low)


# -- the star ---------------------------------------------------------------------------------------------
def test_star_only_when_the_best_interval_clears_every_other():
    clear = compare_runs(_runs_with_finals({"a": [0.90, 0.91, 0.92, 0.93], "b": [0.50, 0.52, 0.54, 0.56],
                                            "c": [0.70, 0.71, 0.72, 0.73]}))
    assert clear.best == "a" and clear.ranking == ["a", "c", "b"]
    text = summary_markdown(clear)
    assert "| **a** ★ |" in text and text.count("★") == 2  # the row and the sentence

    # c's interval now reaches into a's: no star, and a sentence naming the overlap
    close = compare_runs(_runs_with_finals({"a": [0.90, 0.91, 0.92, 0.93], "b": [0.50, 0.52, 0.54, 0.56],
                                            "c": [0.80, 0.85, 0.90, 0.95]}))
    assert close.best is None and close.ranking[0] == "a"
    assert close.learner("a").score_mean.overlaps(close.learner("c").score_mean)
    text = summary_markdown(close)
    assert "★" not in text
    assert "Best learner not resolved: the highest mean best observed reward (a, " in text
    assert "overlaps those of c; no star." in text


def test_lower_is_better_score_stars_the_lowest_regret():
    truth = np.array([1.0, 0.5, 0.0])  # pipelines 0, 1, 2 by their first token
    runs = []
    for seed in range(4):
        for name, pipeline in (("good", 0), ("bad", 2)):
            tokens = [{"x": [pipeline]}]
            runs.append(Run(name, seed, np.array([0.3 + 0.01 * seed]), np.array([0]), tokens=tokens,
                            true_rewards=truth[[t["x"][0] for t in tokens]]))
    c = compare_runs(runs, true_optimum=1.0)
    assert c.score.key == "true_regret" and c.score.lower_is_better
    assert c.learner("good").score_mean.value == 0.0 and c.learner("bad").score_mean.value == 1.0
    assert c.best == "good" and c.ranking == ["good", "bad"]
    assert c.improvement["good", "bad"].value == 1.0
    text = summary_markdown(c)
    assert "(↓ lower is better)" in text and "P(row's true regret of the recommendation < column's)" in text


# -- power ------------------------------------------------------------------------------------------------
def test_seeds_needed_by_hand():
    # ((z_0.975 + z_0.8) * sd / diff)^2 = ((1.959964 + 0.841621) * 2)^2
    assert seeds_needed(0.01, 0.02) == pytest.approx(((1.959964 + 0.841621) * 2) ** 2, rel=1e-5)
    assert seeds_needed(-0.01, 0.02) == seeds_needed(0.01, 0.02)
    assert seeds_needed(0.0, 0.02) == np.inf


def test_power_row_uses_the_paired_differences():
    c = compare_runs(_runs_with_finals({"a": [0.90, 0.80, 0.95, 0.85], "b": [0.88, 0.79, 0.90, 0.84]}))
    (row,) = c.power
    d = np.array([0.02, 0.01, 0.05, 0.01])  # a - b, seed by seed
    assert row.paired and (row.better, row.worse) == ("a", "b")
    assert row.difference == pytest.approx(d.mean()) and row.sd == pytest.approx(d.std(ddof=1))
    assert row.needed == int(np.ceil(((1.959964 + 0.841621) * d.std(ddof=1) / d.mean()) ** 2))
    assert row.seeds == 4 and row.resolved == (4 >= row.needed)
    assert "paired per-seed differences" in summary_markdown(c)
    # seeds that differ between learners: the two-sample estimate
    unpaired = compare_runs([Run("a", s, np.array([v]), np.array([0])) for s, v in enumerate([0.9, 0.8, 0.95])]
                            + [Run("b", s + 10, np.array([v]), np.array([0])) for s, v in enumerate([0.7, 0.8, 0.75])])
    row = unpaired.power[0]
    assert not row.paired
    assert row.sd == pytest.approx(np.hypot(np.std([0.9, 0.8, 0.95], ddof=1), np.std([0.7, 0.8, 0.75], ddof=1)))
    assert power_row(unpaired.learner("a"), unpaired.learner("b")) == row


# -- the recommendation on the table's ground truth ---------------------------------------------------------------
@pytest.fixture(scope="module")
def noisy_table_env():
    env = make_parallel("ma2ml/AutoML-DigitsBench-v0")  # replicate drawn per evaluation, as in real training
    yield env
    env.close()


def test_truth_is_the_mean_over_stored_replicates(noisy_table_env):
    env = noisy_table_env
    t, truth = env.evaluator.table, env.evaluator.truth(env.reward_fn)
    assert truth.shape == (t.n_pipelines,)
    for i in [*t.extra[:5], 0, 1, t.n_pipelines - 1]:
        reps = [env.reward_fn(float(t.val_acc[i, r]), float(t.flops[i]), "ok" if t.status[i, r] == 0 else "failed")
                for r in range(t.status.shape[1]) if t.status[i, r] >= 0]
        assert len(reps) == t.replicates[i] and truth[i] == pytest.approx(np.mean(reps))


def test_a_lucky_single_seed_entry_is_scored_on_the_truth(noisy_table_env):
    env = noisy_table_env
    ev = env.evaluator
    score, true_optimum = known_truth(env)
    optimum, _ = known_reference(env)
    truth = ev.truth(env.reward_fn)
    rows = ev.layout.all_rows()
    extra = ev.table.extra
    per_seed = np.stack([ev.rewards(rows[extra], env.reward_fn, seeds=np.full(len(extra), k)) for k in range(3)])
    lucky = int(extra[np.argmax(per_seed.max(axis=0))])  # the 3-seed pipeline with the best single training
    lucky_reward = float(per_seed.max())
    assert lucky_reward - truth[lucky] > 0.03  # its best training is far above its seed average
    steady = int(np.flatnonzero((truth > truth[lucky] + 0.02) & (truth < lucky_reward))[0])
    tokens = {i: {a: v.tolist() for a, v in ev.layout.tokens_at(i).items()} for i in (steady, lucky)}
    records = [{"index": 0, "batch": 0, "tokens": tokens[steady], "reward": float(truth[steady])},
               {"index": 1, "batch": 0, "tokens": tokens[lucky], "reward": lucky_reward}]
    run = Run.from_records("x", 0, records, truth=score)
    assert run.true_rewards.tolist() == pytest.approx([truth[steady], truth[lucky]])
    c = compare_runs([run], optimum=optimum, true_optimum=true_optimum)
    assert true_optimum == pytest.approx(truth.max())
    assert run.recommended() == 1  # the lucky entry is the best observed...
    s = c.learner("x")
    assert s.anytime["regret"][-1].value == pytest.approx(optimum - lucky_reward)
    assert s.anytime["true_regret"][-1].value == pytest.approx(true_optimum - truth[lucky])  # ...scored on the truth
    assert s.anytime["true_regret"][-1].value > s.anytime["regret"][-1].value + 0.03
    entry = per_run_json([run], c)["runs"][0]
    assert entry["recommended"]["index"] == 1 and entry["recommended"]["tokens"] == tokens[lucky]
    assert entry["recommended"]["true_reward"] == pytest.approx(truth[lucky])
    assert entry["distinct_pipelines"] == 2


def test_distinct_pipelines_count_token_rows():
    tokens = [{"a": [0, 1], "b": [2]}, {"a": [0, 1], "b": [3]}, {"b": [2], "a": [0, 1]}]
    run = Run("x", 0, np.array([0.1, 0.2, 0.3]), np.zeros(3, dtype=int), tokens=tokens)
    assert run.distinct_pipelines == 2
    assert Run("x", 0, np.array([0.1]), np.zeros(1, dtype=int)).distinct_pipelines is None


# -- marl-eval --------------------------------------------------------------------------------------------------
def _marl_runs() -> tuple[list[Run], object]:
    rng = np.random.default_rng(0)
    runs = [Run(name, seed, rng.uniform(0, 1, 30), np.repeat(np.arange(3), 10))
            for name in ("alpha", "beta") for seed in (3, 4, 5)]
    return runs, compare_runs(runs, optimum=1.0, budgets=(5, 10, 100))


def test_marl_eval_json_has_the_documented_structure():
    runs, c = _marl_runs()
    data = json.loads(json.dumps(marl_eval_json(runs, "env", "task", c)))
    # {env: {task: {algo: {run: {"step_k": {"step_count": int, metric: [..]}, "absolute_metrics": {...}}}}}}
    algos = data["env"]["task"]
    assert list(algos) == ["alpha", "beta"]
    assert all(list(algo) == ["run_3", "run_4", "run_5"] for algo in algos.values())  # the same runs everywhere
    for algo in algos.values():
        for run in algo.values():
            *steps, last = run
            assert last == "absolute_metrics" and steps == ["step_0", "step_1", "step_2"]
            assert [run[s]["step_count"] for s in steps] == [5, 10, 30]
            for s in steps:
                assert set(run[s]) == {"step_count", "return", "regret"}
                assert all(isinstance(v, list) and len(v) == 1 for k, v in run[s].items() if k != "step_count")
            assert set(run["absolute_metrics"]) == {"return", "regret"}
            assert run["absolute_metrics"]["return"] == run["step_2"]["return"]
    first = runs[0]
    assert algos["alpha"]["run_3"]["step_0"]["return"] == [pytest.approx(first.rewards[:5].max())]


def test_marl_eval_loads_it():
    """marl-eval's own loader, where the package is installed (``pip install id-marl-eval``)."""
    processing = pytest.importorskip("marl_eval.utils.data_processing_utils")
    runs, c = _marl_runs()
    raw = json.loads(json.dumps(marl_eval_json(runs, "env", "task", c)))
    processed = processing.data_process_pipeline(raw_data=raw, metrics_to_normalize=["return"])
    assert processed["extra"]["number_of_runs"] == 3 and processed["extra"]["number_of_steps"] == 3
    final, curves = processing.create_matrices_for_rliable(data_dictionary=processed, environment_name="env",
                                                           metrics_to_normalize=["return"])
    assert final["mean_norm_return"]["alpha"].shape == (3, 1)
    assert curves["mean_regret"]["beta"].shape == (3, 1, 3)
