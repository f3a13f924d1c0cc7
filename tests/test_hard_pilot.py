"""The hard tier's pilot and build machinery: its module spaces, the epochs lever, the game statistics,
the training-budget reward and the resumable, sharded build. The pilot's own code lives with its scripts
in benchmarks/ (hard_pilot_lib.py), outside the package: tests/conftest.py puts that folder on sys.path."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ma2ml.bench.hard import sharded as hard_build
from hard_pilot_lib import CANDIDATES, interleave, pilot_jobs
from ma2ml.bench.hard.definitions import TableDefinition, space_table, training_seed
from ma2ml.bench.hard.game import (additive_best, additive_unexplained, best_response_runs, equilibria,
                                            game_stats, random_search_median, ranks)
from ma2ml.envs.core.reward import FlopsReward, batch_rewards
from ma2ml.bench.results import ResultsFile
from ma2ml.bench.hard.spaces import AugStrengthSpace, CellNetSpace, TrainSpace
from ma2ml.envs.spaces import AugSpace, HParams, Recipe


# -- spaces -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_candidates_have_three_real_agents_and_round_trip(name):
    candidate = CANDIDATES[name]
    spaces = candidate.spaces()
    assert list(spaces) == ["aug", "nas", "hpo"]
    assert all(len(s.nvec) >= 2 for s in spaces.values())
    assert 2000 <= candidate.n_pipelines <= 15000
    rng = np.random.default_rng(0)
    for space in spaces.values():
        for _ in range(20):
            tokens = space.sample(rng)
            assert np.array_equal(space.encode(space.decode(tokens)), tokens)


def test_spaces_write_their_choice_into_the_recipe():
    nas = CellNetSpace(ops=("sep_conv_3x3", "max_pool_3x3"), fixed_inputs=((0, 1),), channels=(8, 32),
                       cells_per_stage=(1, 2), resolutions=(8, 12))
    hpo = TrainSpace({"epochs": (2, 16), "lr": (0.1, 0.3)})
    aug = AugStrengthSpace(("Rotate+ShearX", "Cutout+Rotate"), probs=(0.2, 0.8), magnitudes=(2, 8))
    recipe = Recipe(architecture=None, hparams=HParams())
    nas.apply(nas.decode([1, 0, 1, 1, 1]), recipe)
    hpo.apply(hpo.decode([1, 1]), recipe)
    aug.apply(aug.decode([1, 1, 0]), recipe)
    assert (recipe.architecture.channels, recipe.architecture.cells_per_stage, recipe.input_size) == (32, 2, 12)
    assert recipe.epochs == 16 and recipe.hparams.lr == 0.3
    assert [(o.op, o.prob, o.magnitude) for o in recipe.augment.sub_policies[0]] == [("Cutout", 0.8, 2),
                                                                                     ("Rotate", 0.8, 2)]
    with pytest.raises(ValueError, match="unknown hyper-parameters"):
        TrainSpace({"epoch": (1, 2)})
    with pytest.raises(ValueError, match="OpA\\+OpB"):
        AugStrengthSpace(("Rotate",), probs=(0.5,), magnitudes=(5, 6))


def test_recipe_epochs_sets_the_training_length():
    from ma2ml.training.evaluators import TrainEvaluator

    candidate = CANDIDATES["budget"]
    ev = TrainEvaluator(candidate.task(), candidate.spaces(), device="cpu")
    tokens = {"aug": np.array([0, 0]), "nas": np.array([2, 2, 0, 0]), "hpo": np.array([1, 0])}  # 8 ch, 2 epochs
    record = ev.evaluate(tokens, seed=3)
    assert record.status == "ok" and len(record.curve) == 2
    assert ev.evaluate(tokens, seed=3).curve == record.curve  # deterministic for a seed


def test_space_table_knows_flops_and_epochs_without_training():
    table = space_table(CANDIDATES["budget"])
    assert len(table["flops"]) == CANDIDATES["budget"].n_pipelines
    assert set(np.unique(table["epochs"])) == {2, 4, 8, 16}
    assert table["flops"].min() > 0


# -- reward -----------------------------------------------------------------------------------------
def test_budget_reward_penalises_above_the_constraint_and_the_budget():
    fn = FlopsReward(constraint=100.0, budget=1000.0, exponent=-0.07, budget_exponent=-3.0)
    acc = np.array([0.9, 0.9, 0.9, 0.9])
    flops, epochs = np.array([100.0, 200.0, 100.0, 100.0]), np.array([10, 5, 20, 5])
    r = batch_rewards(fn, acc, flops, np.array([1, 1, 1, 0], bool), epochs)
    assert r[0] == pytest.approx(0.9)
    assert r[1] == pytest.approx(0.9 * 2 ** -0.07)
    assert r[2] == pytest.approx(0.9 * 2 ** -3)
    assert r[3] == 0
    # the scalar form (the env's) is the same formula
    assert [fn(0.9, f, "ok" if k < 3 else "failed", e) for k, (f, e) in enumerate(zip(flops, epochs))] == \
        pytest.approx(r.tolist())
    # without a budget the epochs do not matter (the poster's reward)
    assert FlopsReward(100.0)(0.9, 100.0, "ok", 10_000) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="budget_exponent"):
        FlopsReward(constraint=1.0, budget=1.0, budget_exponent=1.0)
    with pytest.raises(ValueError, match="training_budget"):
        FlopsReward(constraint=1.0, budget=0.0)


# -- game statistics ----------------------------------------------------------------------------------
def test_additive_game_is_solved_by_best_responses():
    rng = np.random.default_rng(0)
    R = rng.normal(size=6)[:, None, None] + rng.normal(size=7)[None, :, None] + rng.normal(size=5)[None, None, :]
    s = game_stats(R.ravel(), R.shape, starts=50)
    assert s["br_optimum"] == 1.0 and s["equilibria"] == 1 and s["additive_best_rank"] == 1
    assert s["additive_unexplained"] == pytest.approx(0.0, abs=1e-12)


def test_coordination_game_has_two_equilibria():
    R = np.array([[1.0, 0.0], [0.0, 0.9]])[:, :, None] * np.ones((1, 1, 2))  # two agents must agree
    assert sorted(equilibria(R).tolist()) == [0, 1, 6, 7]
    ends = best_response_runs(R, starts=200, seed=1)["ends"]
    assert 0.2 < np.isin(ends, [0, 1]).mean() < 0.9
    assert additive_unexplained(R) > 0.5
    assert additive_best(np.array([[1.0, 0.0], [0.0, 0.9]])) in (0, 3)


def test_ranks_and_random_search_median():
    assert ranks(np.array([0.5, 0.9, 0.9, 0.1])).tolist() == [3, 1, 1, 4]
    assert random_search_median(10_000, 10) == 693
    assert random_search_median(1000, 1, replace=False) == 500


# -- build machinery ---------------------------------------------------------------------------------
def test_pilot_jobs_are_a_fixed_uniform_sample_with_repeats():
    jobs = pilot_jobs(CANDIDATES["budget"], 50, 10)
    assert jobs == pilot_jobs(CANDIDATES["budget"], 50, 10)
    assert sum(r == 1 for _, r in jobs) == 10 and len({i for i, _ in jobs}) == 50
    assert interleave([[1, 2, 3], [4]]) == [1, 4, 2, 3]
    assert training_seed("budget", 3, 0) != training_seed("budget", 3, 1)


def test_shards_partition_the_space():
    candidate = CANDIDATES["regularise"]
    shards = hard_build.shards(candidate)
    assert all(len(s) == hard_build.SHARD_SIZE for s in shards[:-1])
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(candidate.n_pipelines))


def _tiny() -> TableDefinition:
    from hard_pilot_lib import CELL_OPS

    return TableDefinition("tiny", "two epochs at most", lambda: {
        "aug": AugSpace(num_sub_policies=1, ops=("AutoContrast", "Rotate"), probs=(0.5,), magnitudes=(5,)),
        "nas": CellNetSpace(ops=CELL_OPS[1:], fixed_inputs=((0, 1),), channels=(8,)),
        "hpo": TrainSpace({"epochs": (1, 2), "lr": (0.1, 0.3)})})


def test_build_resumes_imports_and_refuses_another_space(tmp_path):
    candidate = _tiny()
    assert candidate.n_pipelines == 64
    assert hard_build.run_build(candidate, tmp_path, limit=3) == 3
    assert hard_build.run_build(candidate, tmp_path, limit=1) == 1  # resumes: the next job, not a repeat
    lines = hard_build.read_build(candidate, tmp_path)
    assert len(lines) == 4 and {r["replicate"] for r in lines} == {0, 1}
    assert all(r["status"] == "ok" and r["platform"]["torch_threads"] == 1 for r in lines)
    assert all(len(r["test_curve"]) == len(r["curve"]) and r["test_curve"][-1] == r["test_acc"] for r in lines)
    # the first two jobs are one pipeline's two seeds
    assert lines[0]["index"] == lines[1]["index"] and lines[0]["seed"] != lines[1]["seed"]
    # results of the same space and seeds are copied, not retrained
    other = tmp_path / "other"
    assert hard_build.import_results(candidate, other, [hard_build.shard_path(tmp_path, candidate, 0)]) == 4
    assert hard_build.import_results(candidate, other, [hard_build.shard_path(tmp_path, candidate, 0)]) == 0
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps({"fingerprint": {"task": "else"}}) + "\n")
    with pytest.raises(ValueError, match="another space"):
        hard_build.import_results(candidate, other, [foreign])
    with pytest.raises(ValueError, match="incomplete"):
        hard_build.top_pipelines(candidate, tmp_path, [lambda a: a["val_acc"]])


def test_the_top_is_the_union_of_each_rewards_top(tmp_path):
    candidate = _tiny()
    for file, (index, rep) in hard_build.base_work(candidate, tmp_path):  # made-up results, no training
        file.append({"index": index, "replicate": rep, "val_acc": index / 64 + 0.001 * rep, "flops": 100 + index,
                     "status": "ok"})
        file.close()
    by_acc = hard_build.top_pipelines(candidate, tmp_path, [lambda a: a["val_acc"]], fraction=0.05)
    assert by_acc.tolist() == [60, 61, 62, 63]
    both = hard_build.top_pipelines(candidate, tmp_path, [lambda a: a["val_acc"], lambda a: -a["flops"]],
                                    fraction=0.05)
    assert both.tolist() == [0, 1, 2, 3, 60, 61, 62, 63]
    work = list(hard_build.top_work(candidate, tmp_path, both))
    assert len(work) == 8 * hard_build.TOP_SEEDS and {r for _, (_, r) in work} == {2, 3, 4, 5}
    # two top workers split the pipelines, each into its own file; done jobs in any top file are skipped
    halves = [list(hard_build.top_work(candidate, tmp_path, both, worker=(i, 2))) for i in (0, 1)]
    assert sorted(job for half in halves for _, job in half) == sorted(job for _, job in work)
    assert halves[1][0][0].path.name == "tiny-top-1of2.jsonl"
    file, job = halves[1][0]
    file.append({"index": job[0], "replicate": job[1], "val_acc": 1.0, "flops": 1, "status": "ok"})
    file.close()
    assert len(list(hard_build.top_work(candidate, tmp_path, both))) == len(work) - 1
    assert len(hard_build.read_build(candidate, tmp_path)) == 2 * 64 + 1
    # the top 1% of the top, by the six-seed mean, waits for the top's six seeds
    by_acc_reward = [lambda a: a["val_acc"]]
    with pytest.raises(ValueError, match="top of 'tiny' is incomplete"):
        hard_build.top1_pipelines(candidate, tmp_path, by_acc_reward, fraction=0.02)
    for file, (index, rep) in hard_build.top_work(candidate, tmp_path, hard_build.top_pipelines(
            candidate, tmp_path, by_acc_reward)):
        file.append({"index": index, "replicate": rep, "val_acc": index / 64, "flops": 100, "status": "ok"})
        file.close()
    assert hard_build.top1_pipelines(candidate, tmp_path, by_acc_reward, fraction=0.02).tolist() == [62, 63]


def test_second_seed_goes_to_the_best_first_seeds_and_the_top_waits_for_them(tmp_path):
    candidate = _tiny()
    by_acc = [lambda a: a["val_acc"]]
    assert hard_build.first_seed_rank(candidate, tmp_path, by_acc) is None  # nothing built yet
    for file, (index, rep) in hard_build.base_work(candidate, tmp_path, seeds=1):
        file.append({"index": index, "replicate": rep, "val_acc": index / 64, "flops": 100, "status": "ok"})
        file.close()
    rank = hard_build.first_seed_rank(candidate, tmp_path, by_acc)
    assert rank[63] == 0 and rank[0] == 63 / 64
    work = [(f, job) for f, job in hard_build.base_work(candidate, tmp_path, rank=rank) if job not in f.done]
    assert [job for _, job in work[:3]] == [(63, 1), (62, 1), (61, 1)]
    with pytest.raises(ValueError, match="top 10%"):
        hard_build.top_pipelines(candidate, tmp_path, by_acc, fraction=0.05)
    for file, (index, rep) in work[:7]:  # the best 7 by first seed (> 10 % of 64) get their second seed
        file.append({"index": index, "replicate": rep, "val_acc": index / 64, "flops": 100, "status": "ok"})
        file.close()
    assert hard_build.top_pipelines(candidate, tmp_path, by_acc, fraction=0.05).tolist() == [60, 61, 62, 63]
    with pytest.raises(ValueError, match="stage"):
        hard_build.run_build(candidate, tmp_path, stage="middle")
    # the first reward's cover goes first: under "lowest accuracy" the best by first seed is pipeline 0
    worst_first = [lambda a: -a["val_acc"], lambda a: a["val_acc"]]
    assert hard_build.run_build(candidate, tmp_path, top=worst_first, stage="base", limit=1) == 1
    assert (0, 1) in hard_build.ResultsFile(hard_build.shard_path(tmp_path, candidate, 0), candidate.fingerprint()).done


def test_results_file_drops_a_torn_line(tmp_path):
    candidate = _tiny()
    f = ResultsFile(tmp_path / "r.jsonl", candidate.fingerprint())
    f.append({"index": 1, "replicate": 0})
    f.close()
    with open(tmp_path / "r.jsonl", "a") as fh:
        fh.write('{"index": 2, "repl')
    assert ResultsFile(tmp_path / "r.jsonl", candidate.fingerprint()).done == {(1, 0)}


# -- pilot analysis ----------------------------------------------------------------------------------
def test_pilot_analysis_pieces():
    from hard_pilot_lib import fit_surrogates, pairwise_onehot, seed_noise

    rows = np.array([[0, 1], [1, 0], [1, 1]])
    onehot = pairwise_onehot(rows, np.array([2, 2]))
    assert onehot.shape == (3, 2 + 2 + 4) and (onehot.sum(axis=1) == 3).all()
    results = [{"index": i, "replicate": r, "status": "ok", "val_acc": 0.5 + 0.1 * i + 0.01 * r}
               for i in range(8) for r in (0, 1)]
    assert seed_noise(results)["std"] == pytest.approx(0.01 / np.sqrt(2))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = x @ np.array([1.0, -0.5, 0.2])
    fits = fit_surrogates(x, x, np.arange(200), (y[:200] - y.min()) / np.ptp(y))
    assert fits["ridge2"]["spearman"] > 0.99 and len(fits["hgb"]["predict"]) == 300
