"""The digits benchmark: its space, the committed table, the table envs and the generator."""
from __future__ import annotations

import json

import gymnasium
import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.envs import bench
from ma2ml.envs.bench import (
    TABLE_PATH, TableEvaluator, batch_rewards, bench_spaces, joint_nvec, load_table, pipeline_index,
    pipeline_tokens, table_stats, unexplained_share,
)
from ma2ml.envs.reward import FlopsReward
from ma2ml.envs.spaces import AugOp, AugPolicy

PID, GID = "ma2ml/AutoML-DigitsBench-v0", "ma2ml/JointAutoML-DigitsBench-v0"


@pytest.fixture(scope="module")
def table():
    return load_table()


def _joint(evaluator: TableEvaluator, index: int) -> dict[str, np.ndarray]:
    return pipeline_tokens(evaluator.spaces, index)


def test_space_is_compact_and_every_module_is_an_agent():
    spaces = bench_spaces()
    assert list(spaces) == ["aug", "nas", "hpo"]
    assert all(len(s.nvec) >= 2 for s in spaces.values())
    n = int(np.prod(joint_nvec(spaces)))
    assert n >= 5000
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, 50)
    rows = np.stack([np.concatenate(list(pipeline_tokens(spaces, i).values())) for i in idx])
    np.testing.assert_array_equal(pipeline_index(spaces, rows), idx)


def test_table_file_is_complete_and_small(table):
    assert TABLE_PATH.stat().st_size < 5 * 2**20
    assert (table.status[:, 0] >= 0).all(), "every pipeline has its main entry"
    n = table.n_pipelines
    assert len(table.extra) == round(0.1 * n)
    assert (table.replicates[table.extra] == 3).all()
    assert (np.delete(table.replicates, table.extra) == 1).all()
    ok = table.status == 0
    np.testing.assert_array_equal(table.val_acc[ok], table.curve[ok][:, -1])
    assert np.unique(table.seed[table.seed >= 0]).size == (table.seed >= 0).sum(), "distinct seeds"
    assert table.val_acc[:, 0].std() > 0.05, "accuracies spread"
    assert (table.flops > bench.BENCH_FLOPS_CONSTRAINT).any() and (table.flops <= bench.BENCH_FLOPS_CONSTRAINT).any()


def test_parallel_api_and_seed():
    parallel_api_test(pettingzoo.make("parallel", PID), num_cycles=20)
    parallel_seed_test(lambda: pettingzoo.make("parallel", PID), num_cycles=20)


def test_aec_api():
    api_test(pettingzoo.make("aec", PID), num_cycles=20)


def test_joint_view_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    gym_check(gymnasium.make(GID).unwrapped, skip_render_check=True)
    sb3_check(gymnasium.make(GID).unwrapped)


def test_lookups_are_exact_through_every_path(table):
    env = pettingzoo.make("parallel", PID, table_seed=0)
    ev = env.evaluator
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    indices = list(rng.integers(0, table.n_pipelines, 40)) + list(table.extra[:10])
    batch = [_joint(ev, i) for i in indices]
    records = env.evaluate_batch(batch)
    rewards = ev.rewards(ev.joint(batch), env.reward_fn)
    for i, actions, record, r in zip(indices, batch, records, rewards):
        env.reset()
        _, rew, _, _, infos = env.step(actions)
        assert infos["aug"]["val_acc"] == record.val_acc == table.val_acc[i, 0]
        assert record.test_acc == table.test_acc[i, 0] and record.flops == table.flops[i]
        assert record.seed == table.seed[i, 0] == bench.pipeline_seed(i, 0)
        assert record.curve == table.curve[i, 0].tolist()
        assert rew["nas"] == env.reward(record) == pytest.approx(r, abs=1e-12)
        assert record.pipeline == ev.pipeline_json(actions)


def test_seed_option_picks_replicates(table):
    i = int(table.extra[0])
    other = int(np.setdiff1d(np.arange(table.n_pipelines), table.extra)[0])
    for k in range(3):
        ev = TableEvaluator(seed=k)
        assert ev.evaluate(_joint(ev, i), seed=123).val_acc == table.val_acc[i, k]
        assert ev.evaluate(_joint(ev, other), seed=123).val_acc == table.val_acc[other, 0]
    ev = TableEvaluator(seed="random")
    got = {ev.evaluate(_joint(ev, i), seed=s).seed for s in range(12)}
    assert got == set(table.seed[i].tolist())
    env = pettingzoo.make("parallel", PID)
    env.reset(seed=5)
    first = [r.val_acc for r in env.evaluate_batch([_joint(ev, i)] * 30)]
    env.reset(seed=5)
    assert [r.val_acc for r in env.evaluate_batch([_joint(ev, i)] * 30)] == first
    with pytest.raises(ValueError, match="seed must be 'random' or a replicate 0..2"):
        TableEvaluator(seed=3)
    with pytest.raises(ValueError, match="needs one seed per joint action"):
        ev.lookup(ev.joint([_joint(ev, i)]))


def test_epoch_fidelity(table):
    env = pettingzoo.make("parallel", PID, table_seed=0, epoch=2)
    env.reset(seed=0)
    i = 77
    _, _, _, _, infos = env.step(_joint(env.evaluator, i))
    assert infos["hpo"]["val_acc"] == table.curve[i, 0, 1] and infos["hpo"]["curve"] == table.curve[i, 0, :2].tolist()
    assert infos["hpo"]["test_acc"] == 0.0
    with pytest.raises(ValueError, match="epoch must be 1..4"):
        TableEvaluator(epoch=5)


def test_pipeline_outside_the_space_is_one_clear_error():
    env = pettingzoo.make("parallel", PID)
    env.reset(seed=0)
    ev = env.evaluator
    good = _joint(ev, 0)
    with pytest.raises(ValueError, match=r"agent 'aug': token 0 \(sub0.op0.type\) = 4 is out of range; valid values are 0..3"):
        env.step({**good, "aug": np.array([4, 0])})
    with pytest.raises(ValueError, match=r"agent 'hpo': expected 2 tokens \['lr', 'batch_size'\]"):
        env.step({**good, "hpo": np.array([0, 0, 0])})
    with pytest.raises(ValueError, match=r"this env's agents are \['aug', 'nas', 'hpo'\]"):
        env.step({"aug": good["aug"], "nas": good["nas"]})
    rows = ev.joint([good])
    rows[0, 3] = 3
    with pytest.raises(ValueError, match=r"agent 'nas': token 1 \(normal.b0.op1\) = 3 is out of range; valid values "
                                         r"are 0..2 \(\['sep_conv_3x3', 'dil_conv_3x3', 'max_pool_3x3'\]\)"):
        ev.lookup(rows, seeds=[0])
    configs = {a: s.decode(good[a]) for a, s in ev.spaces.items()}
    configs["aug"] = AugPolicy(((AugOp("Invert", 0.5, 5), AugOp("Rotate", 0.5, 5)),))
    with pytest.raises(ValueError, match=r"sub0.op0.type = 'Invert' is not in the space; valid values are "
                                         r"\['AutoContrast', 'Rotate', 'TranslateY', 'Cutout'\]"):
        ev._evaluate(configs, 0)


def test_batch_rewards_match_flops_reward():
    rng = np.random.default_rng(0)
    acc, flops = rng.uniform(0, 1, 200), rng.integers(1, 400_000, 200)
    ok = rng.uniform(size=200) > 0.1
    for soft in (False, True):
        fn = FlopsReward(144_544.0, -0.07, soft)
        expected = [fn(a, f, "ok" if o else "diverged") for a, f, o in zip(acc, flops, ok)]
        np.testing.assert_allclose(batch_rewards(fn, acc, flops, ok), expected, rtol=1e-12)


def test_unexplained_share_separates_additive_from_interaction():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 2000), rng.integers(0, 5, 2000)
    additive = rng.normal(size=4)[a] + rng.normal(size=5)[b]
    assert unexplained_share(additive, [a, b]) < 1e-20
    interaction = rng.normal(size=(4, 5))[a, b]
    assert unexplained_share(interaction, [a, b]) > 0.2


def test_stats_are_consistent(table):
    s = table_stats(table)
    rewards = batch_rewards(FlopsReward(bench.BENCH_FLOPS_CONSTRAINT), np.nan_to_num(table.val_acc[:, 0]),
                            table.flops, table.status[:, 0] == 0)
    assert s["optimum"] == rewards.max() == rewards[s["optimum_index"]]
    assert (rewards >= s["top1_threshold"]).sum() >= s["top1_count"] == int(np.ceil(0.01 * table.n_pipelines))
    assert s["seed_subset"] == len(table.extra) and s["seed_noise_reward"] > 0
    assert 0.0 < s["unexplained_additive"] <= s["unexplained_additive_per_token"] <= 1.0


def test_cli_info(capsys):
    from ma2ml.cli import main

    assert main(["bench", "info"]) == 0
    out = capsys.readouterr().out
    assert "5,184 pipelines" in out and "top 1%" in out and "unexplained" in out
    assert main(["bench", "info", "--table", "/nonexistent/t.npz"]) == 2
    assert "no benchmark table at" in capsys.readouterr().err


@pytest.mark.slow
def test_retraining_reproduces_entries_exactly(table):
    """Same seed, CPU, one torch thread (as the build): the stored records are reproduced bit for bit."""
    from ma2ml.envs.evaluators import TrainEvaluator

    spaces = bench_spaces()
    trainer = TrainEvaluator(bench.bench_task(), spaces, device="cpu")
    for i, k in [(0, 0), (2591, 0), (int(table.extra[3]), 2)]:
        record = trainer.evaluate(pipeline_tokens(spaces, i), int(table.seed[i, k]))
        assert record.seed == bench.pipeline_seed(i, k)
        assert record.val_acc == table.val_acc[i, k]
        assert record.curve == table.curve[i, k].tolist()
        assert record.test_acc == table.test_acc[i, k]
        assert (record.flops, record.params) == (table.flops[i], table.params[i])


@pytest.mark.slow
def test_build_resumes_and_compacts(tmp_path):
    raw = tmp_path / "t.jsonl"
    assert bench.run_build(raw, workers=1, limit=2, progress=False) == 2
    first = raw.read_text().splitlines()
    with raw.open("a") as fh:
        fh.write('{"index": 1, "repl')  # a torn line, as a kill mid-write leaves it
    assert bench.run_build(raw, workers=1, limit=3, progress=False) == 3
    lines = raw.read_text().splitlines()
    assert lines[:3] == first and len(lines) == 4 and all(json.loads(x) for x in lines)
    jobs = bench.build_jobs(int(np.prod(joint_nvec(bench_spaces()))))[:3]
    assert sorted((r["index"], r["replicate"]) for r in bench.read_raw(raw)) == sorted(jobs)
    out = bench.compact(raw, tmp_path / "t.npz")
    partial = load_table(out)
    assert (partial.status >= 0).sum() == 3
    ev = TableEvaluator(out, seed=0)
    i, k = jobs[0]
    if k == 0:
        assert ev.evaluate(_joint(ev, i), 0).val_acc == partial.val_acc[i, 0]
    missing = int(np.flatnonzero(partial.status[:, 0] < 0)[0])
    with pytest.raises(ValueError, match=f"pipeline {missing} has no entry in this \\(partial\\) table"):
        ev.lookup(ev.joint([_joint(ev, missing)]))
    with pytest.raises(ValueError, match="table is partial"):
        table_stats(partial)
    fp = json.loads(lines[0])
    fp["fingerprint"]["budget"]["epochs"] = 99
    raw.write_text(json.dumps(fp) + "\n")
    with pytest.raises(ValueError, match="built for another space or budget"):
        bench.run_build(raw, workers=1, limit=1, progress=False)
