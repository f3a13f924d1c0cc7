"""The hard tier's table and env ids (issue 15): the packaged table, the API checkers, exact
lookups through every path, the seed-averaged truth, the compaction of build shards, and
``ma2ml bench info --bench hard``."""
from __future__ import annotations

import json

import gymnasium
import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import ma2ml.envs  # noqa: F401  (registers the ids)
from ma2ml.bench.hard import sharded as hard_build
from ma2ml.bench.hard.definitions import DEFINITIONS, HARD_DEFINITION, HARD_REWARD, training_seed, space_table
from ma2ml.bench.hard.definitions import candidate_reward
from ma2ml.bench.hard.tables import HARD_BENCH, HARD_FLOPS_CONSTRAINT, HARD_REWARD_ARGS, compact_build, hard_reward
from ma2ml.bench.properties import hard_stats
from ma2ml.bench.table import TableEvaluator, load_table
from ma2ml.envs.core.reward import batch_rewards

PID, GID, TID = "ma2ml/AutoML-DigitsHard-v0", "ma2ml/JointAutoML-DigitsHard-v0", "ma2ml/TokenAutoML-DigitsHard-v0"
CANDIDATE = DEFINITIONS[HARD_DEFINITION]


@pytest.fixture(scope="module")
def table():
    return load_table(bench=HARD_BENCH)


def test_the_tiers_constants_are_the_counted_ones():
    counted = space_table(CANDIDATE)
    assert HARD_FLOPS_CONSTRAINT == float(np.median(counted["flops"]))
    fn = candidate_reward(CANDIDATE, *HARD_REWARD)
    assert HARD_REWARD_ARGS == {"flops_constraint": fn.constraint, "reward_exponent": fn.exponent,
                                "training_budget": fn.budget, "budget_exponent": fn.budget_exponent}
    assert hard_reward() == fn
    np.testing.assert_array_equal(HARD_BENCH.own_epochs(), counted["epochs"])
    assert HARD_BENCH.epochs == counted["epochs"].max()


def test_packaged_table_is_exhaustive_and_matches_the_space(table):
    n = CANDIDATE.n_pipelines
    assert table.n_pipelines == n == 10_368
    assert (table.replicates >= 1).all(), "every pipeline really trained"
    np.testing.assert_array_equal(table.flops, space_table(CANDIDATE)["flops"].astype(np.int64))
    stored = table.status >= 0
    assert table.meta["entries"] == int(stored.sum())
    assert sum(table.meta["seeds_histogram"].values()) == n
    # replicates stored from 0 up, each with the build's derived seed
    index, rep = np.nonzero(stored)
    sample = np.random.default_rng(0).choice(len(index), 200, replace=False)
    assert all(table.seed[index[k], rep[k]] == training_seed(CANDIDATE.name, index[k], rep[k]) for k in sample)
    # every curve is as long as its pipeline's epochs and ends at the final validation accuracy
    own = HARD_BENCH.own_epochs()
    lengths = np.isfinite(table.curve).sum(axis=2)
    np.testing.assert_array_equal(lengths[stored], np.broadcast_to(own[:, None], stored.shape)[stored])
    ok = table.status == 0
    last = table.curve[np.nonzero(ok)[0], np.nonzero(ok)[1], own[np.nonzero(ok)[0]] - 1]
    np.testing.assert_allclose(last, table.val_acc[ok], atol=1e-6)
    assert set(table.extra.tolist()) == set(np.flatnonzero(table.replicates > hard_build.BUILD_SEEDS).tolist())


def test_parallel_api_and_seed():
    parallel_api_test(pettingzoo.make("parallel", PID), num_cycles=20)
    parallel_seed_test(lambda: pettingzoo.make("parallel", PID), num_cycles=20)
    parallel_api_test(pettingzoo.make("parallel", TID), num_cycles=20)


def test_aec_api():
    api_test(pettingzoo.make("aec", PID), num_cycles=20)


def test_joint_view_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    gym_check(gymnasium.make(GID).unwrapped, skip_render_check=True)
    sb3_check(gymnasium.make(GID).unwrapped)


def test_the_env_defaults_to_the_tiers_reward():
    env = pettingzoo.make("parallel", PID)
    assert env.reward_fn == hard_reward()
    poster = pettingzoo.make("parallel", PID, budget_exponent=0.0)
    assert poster.reward_fn.budget_exponent == 0.0 and poster.reward_fn.constraint == HARD_FLOPS_CONSTRAINT


@pytest.mark.parametrize("seed, epoch", [(0, None), ("random", None), (1, 4), ("random", 8)])
def test_lookups_agree_through_every_path(table, seed, epoch):
    """A PettingZoo step, ``evaluate_batch`` and the vectorized ``rewards`` give the same answer; at a
    fidelity above a pipeline's own epochs it answers with (and charges) its own epochs."""
    env = pettingzoo.make("parallel", PID, table_seed=seed, epoch=epoch)
    ev = env.evaluator
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    indices = [int(i) for i in rng.integers(0, table.n_pipelines, 30)] + [int(i) for i in table.extra[:5]]
    batch = [ev.layout.tokens_at(i) for i in indices]
    seeds = env.next_seeds(len(batch)) if hasattr(env, "next_seeds") else list(range(len(batch)))
    records = ev.evaluate_batch(batch, seeds)
    rewards = ev.rewards(ev.joint(batch), env.reward_fn, seeds)
    own = HARD_BENCH.own_epochs()
    for i, s, record, r in zip(indices, seeds, records, rewards):
        rep = int(s) % int(table.replicates[i]) if seed == "random" else (seed if table.replicates[i] > seed else 0)
        e = min(epoch or 16, int(own[i]))
        assert len(record.curve) == e
        expected = table.val_acc[i, rep] if e == own[i] else table.curve[i, rep, e - 1]
        assert record.val_acc == pytest.approx(float(expected))
        assert env.reward(record) == pytest.approx(float(r), abs=1e-12)
        assert record.test_acc == (table.test_acc[i, rep] if e == own[i] else 0.0)
        fresh = pettingzoo.make("parallel", PID, table_seed=seed, epoch=epoch).evaluator  # a run of its own
        scalar = fresh.evaluate(batch[indices.index(i)], int(s))
        assert scalar.val_acc == record.val_acc and scalar.seed == record.seed


def test_the_truth_averages_every_stored_seed_with_the_pipelines_own_cost(table):
    ev = TableEvaluator(replicate=0, bench=HARD_BENCH)
    fn = hard_reward()
    truth = ev.truth(fn)
    own = HARD_BENCH.own_epochs()
    for i in [int(np.argmax(table.replicates)), int(np.argmax(truth)), 17, 4000]:
        k = int(table.replicates[i])
        per_seed = batch_rewards(fn, table.val_acc[i, :k], np.full(k, float(table.flops[i])), table.status[i, :k] == 0,
                                 np.full(k, own[i]))
        assert truth[i] == pytest.approx(per_seed.mean())
    # the reference optimum is the truth's (the main runs alone are too noisy at the top)
    assert ev.reference(fn)[0] == pytest.approx(truth.max())
    # a training budget changes the ranking: the poster's reward prefers other pipelines
    poster = ev.truth(candidate_reward(CANDIDATE, 1.0, 0.0))
    assert int(np.argmax(poster)) != int(np.argmax(truth))


def test_bad_replicates_and_fidelities_are_refused():
    with pytest.raises(ValueError, match=r"'random' or 0\.\.9"):
        TableEvaluator(replicate=10, bench=HARD_BENCH)
    with pytest.raises(ValueError, match=r"epoch must be 1\.\.16"):
        TableEvaluator(epoch=17, bench=HARD_BENCH)


def test_compact_build_from_shards(tmp_path):
    """Made-up result lines (no training) in the build's files: a partial table, and a refusal of a
    replicate stored without the ones before it."""
    file = hard_build.ResultsFile(hard_build.shard_path(tmp_path, CANDIDATE, 0), CANDIDATE.fingerprint())
    flops, epochs = space_table(CANDIDATE)["flops"], space_table(CANDIDATE)["epochs"]
    for index in (5, 9):
        for rep in (0, 1):
            e = int(epochs[index])
            file.append({"index": index, "replicate": rep, "seed": training_seed(CANDIDATE.name, index, rep),
                         "status": "ok", "val_acc": 0.5 + rep / 10, "test_acc": 0.4, "flops": int(flops[index]),
                         "params": 100, "curve": [0.1] * (e - 1) + [0.5 + rep / 10], "train_seconds": 1.0})
    file.close()
    out = compact_build(tmp_path, tmp_path / "t.npz")
    with np.load(out) as data:
        meta = json.loads(str(data["meta"]))
        assert meta["seeds_histogram"] == {"0": CANDIDATE.n_pipelines - 2, "2": 2} and meta["complete"] is False
        assert data["val_acc"][9, 1] == pytest.approx(0.6) and data["status"][10, 0] == -1
    ev = TableEvaluator(out, replicate=0, bench=HARD_BENCH)
    with pytest.raises(ValueError, match="pipeline 0 has no entry.*hard_build"):
        ev.evaluate_batch([ev.layout.tokens_at(0)], [0])
    assert ev.evaluate(ev.layout.tokens_at(9), 0).val_acc == pytest.approx(0.5)
    top = hard_build.ResultsFile(hard_build.shard_path(tmp_path, CANDIDATE, "top"), CANDIDATE.fingerprint())
    top.append({"index": 7, "replicate": 3, "seed": 1, "status": "ok", "val_acc": 0.5, "test_acc": 0.4,
                "flops": int(flops[7]), "params": 1, "curve": [0.5] * int(epochs[7]), "train_seconds": 1.0})
    top.close()
    with pytest.raises(ValueError, match=r"pipeline 7 has replicates \[3\]: not from 0 up"):
        compact_build(tmp_path, tmp_path / "t2.npz")
    assert not (tmp_path / "t2.npz").exists()


def test_hard_stats_on_the_packaged_table():
    s = hard_stats(starts=200)
    assert s["pipelines"] == 10_368 and s["agent_choices"] == {"aug": 18, "nas": 24, "hpo": 24}
    assert 0.0 <= s["br_top01"] <= s["br_top1"] <= 1.0
    assert s["equilibria"] >= 1 and s["top01_count"] == 11 and s["top1_count"] == 104
    assert s["random_search_median"] > 0 and s["noise_to_spread"] > 0
    assert s["trained_share"] == 1.0
    assert 0.0 <= s["replicate0_best_true_regret"] < s["top1_spread"]


def test_power_at_budgets_from_a_per_run_json():
    from ma2ml.report import POSTER_PAIRS, format_budget_power, power_at_budgets
    from ma2ml.stats import seeds_needed

    rng = np.random.default_rng(0)
    runs = []
    for learner, shift in (("ma2ml", 0.0), ("ma2ml-lite", 0.01), ("random", 0.03)):
        for seed in range(10):
            runs.append({"learner": learner, "seed": seed,
                         "at_budget": {"true_regret": [shift + 0.05 + rng.normal(0, 0.01), shift + rng.normal(0, 0.01)]}})
    per_run = {"score": "true_regret", "budgets": [50, 100], "runs": runs}
    rows = power_at_budgets(per_run, [100])
    assert [(r.first, r.second) for r in rows] == [("ma2ml", "ma2ml-lite"), ("ma2ml-lite", "random"), ("ma2ml", "random")]
    a = np.array([r["at_budget"]["true_regret"][1] for r in runs if r["learner"] == "ma2ml"])
    b = np.array([r["at_budget"]["true_regret"][1] for r in runs if r["learner"] == "ma2ml-lite"])
    assert rows[0].needed == max(int(np.ceil(seeds_needed((a - b).mean(), (a - b).std(ddof=1)))), 2)
    assert ("ma2ml", "random") in POSTER_PAIRS
    assert "budget 100" in format_budget_power(rows, "true_regret")[0]
    with pytest.raises(ValueError, match=r"budgets \[300\] are not among"):
        power_at_budgets(per_run, [300])


def test_bench_info_hard_prints_properties_1_to_5(tmp_path, capsys):
    from ma2ml.cli import main

    per_run = {"score": "true_regret", "budgets": [50, 100, 300],
               "runs": [{"learner": name, "seed": s, "at_budget": {"true_regret": [0.05 + d, 0.03 + d, 0.01 + d * s]}}
                        for name, d in (("ma2ml", 0.0), ("random", 0.01)) for s in range(4)]}
    (tmp_path / "per_run.json").write_text(json.dumps(per_run))
    assert main(["bench", "info", "--bench", "hard", "--comparison", str(tmp_path / "per_run.json")]) == 0
    out = capsys.readouterr().out
    for heading in ("1. coordination", "2. headroom", "3. resolution", "4. provenance", "5. power"):
        assert heading in out
    assert "alternating best responses" in out and "budget 300" in out and "ma2ml (" in out
    (tmp_path / "bad.json").write_text(json.dumps({**per_run, "budgets": [1, 2, 3]}))
    assert main(["bench", "info", "--bench", "hard", "--comparison", str(tmp_path / "bad.json")]) == 2
    assert "not a per_run.json" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [({"training_budget": 0}, r"training_budget must be a finite number in \[1, "),
                                           ({"training_budget": float("nan")}, "training_budget"),
                                           ({"budget_exponent": 1.0}, r"budget_exponent must be a finite number in \[-10, 0\]")])
def test_bad_reward_arguments_are_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pettingzoo.make("parallel", PID, **kwargs)


def test_the_training_budget_charges_the_epochs_actually_trained():
    """A record trained for e epochs pays FLOPs x e against B (the scalar path's cost is the curve's length)."""
    env = pettingzoo.make("parallel", PID, table_seed=0)
    ev = env.evaluator
    own = HARD_BENCH.own_epochs()
    table = ev.table
    budget = HARD_REWARD_ARGS["training_budget"]
    over = np.flatnonzero((table.flops * own > 2 * budget) & (table.status[:, 0] == 0))[0]
    record = ev.evaluate(ev.layout.tokens_at(int(over)), 0)
    cost = float(table.flops[over]) * own[over]
    inference = (table.flops[over] / HARD_FLOPS_CONSTRAINT) ** -0.07 if table.flops[over] > HARD_FLOPS_CONSTRAINT else 1.0
    expected = record.val_acc * inference * (cost / budget) ** -3.0
    assert env.reward(record) == pytest.approx(expected)
    cheap = pettingzoo.make("parallel", PID, table_seed=0, epoch=1)  # one epoch is within the budget
    low = cheap.evaluator.evaluate(ev.layout.tokens_at(int(over)), 0)
    assert len(low.curve) == 1 and float(table.flops[over]) <= budget
    assert cheap.reward(low) == pytest.approx(low.val_acc * inference)  # one epoch's cost: no budget factor
