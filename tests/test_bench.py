"""The digits benchmark: its space, the committed table, the table envs and the generator."""
from __future__ import annotations

import json
import os
import zipfile

import gymnasium
import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import ma2ml.envs  # noqa: F401  (registers the envs)
import ma2ml.bench as bench
from ma2ml.bench import digits_build as bench_build
from ma2ml.bench.space import bench_spaces, joint_nvec, pipeline_index, pipeline_tokens
from ma2ml.bench.properties import table_stats, unexplained_share
from ma2ml.bench.table import TABLE_PATH, TableEvaluator, load_table
from ma2ml.envs.core.reward import FlopsReward, batch_rewards
from ma2ml.envs.spaces import AugOp, AugPolicy
from ma2ml.models.nasnet import KERNELS

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


@pytest.mark.parametrize("seed, epoch", [("random", None), (0, None), (2, None), ("random", 2), (1, 3)])
def test_scalar_step_path_equals_the_batched_path(seed, epoch):
    """``TableEvaluator.evaluate`` (what a PettingZoo step uses) answers exactly like ``evaluate_batch`` (two
    evaluators: with ``"random"`` each draws among a pipeline's replicates as its run goes on)."""
    import dataclasses

    ev, other = TableEvaluator(replicate=seed, epoch=epoch), TableEvaluator(replicate=seed, epoch=epoch)
    rng = np.random.default_rng(7)
    indices = rng.integers(0, 5184, 500)
    seeds = rng.integers(0, 2**31 - 1, 500).tolist()
    batch = [_joint(ev, int(i)) for i in indices]
    scalar = [ev.evaluate(actions, s) for actions, s in zip(batch, seeds)]
    batched = other.evaluate_batch(batch, seeds)
    assert [r.to_dict() for r in scalar] == [r.to_dict() for r in batched]
    assert [r.to_dict() for r in scalar] == [dataclasses.asdict(r) for r in scalar]
    info = scalar[0].to_dict()  # a private copy: changing it changes no later answer
    info["pipeline"]["hpo"]["lr"], info["curve"][0] = -1.0, -1.0
    fresh = TableEvaluator(replicate=seed, epoch=epoch)
    assert fresh.evaluate(batch[0], seeds[0]).to_dict() == batched[0].to_dict()


def test_seed_option_picks_replicates(table):
    i = int(table.extra[0])
    other = int(np.setdiff1d(np.arange(table.n_pipelines), table.extra)[0])
    for k in range(3):
        ev = TableEvaluator(replicate=k)
        assert ev.evaluate(_joint(ev, i), seed=123).val_acc == table.val_acc[i, k]
        assert ev.evaluate(_joint(ev, other), seed=123).val_acc == table.val_acc[other, 0]
    ev = TableEvaluator(replicate="random")
    got = {ev.evaluate(_joint(ev, i), seed=s).seed for s in range(12)}
    assert got == set(table.seed[i].tolist())
    env = pettingzoo.make("parallel", PID)
    env.reset(seed=5)
    first = [r.val_acc for r in env.evaluate_batch([_joint(ev, i)] * 30)]
    env.reset(seed=5)
    assert [r.val_acc for r in env.evaluate_batch([_joint(ev, i)] * 30)] == first
    with pytest.raises(ValueError, match=r"table_seed \(the replicate\) must be 'random' or 0..2"):
        TableEvaluator(replicate=3)
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


def _retrain(entries, table):
    """Retrain ``(pipeline, replicate)`` entries with their stored seeds (CPU, one torch thread, as the build)."""
    from ma2ml.training.evaluators import TrainEvaluator

    spaces = bench_spaces()
    trainer = TrainEvaluator(bench.bench_task(), spaces, device="cpu")
    return [trainer.evaluate(pipeline_tokens(spaces, i), int(table.seed[i, k])) for i, k in entries]


def _assert_exact(entries, records, table):
    for (i, k), record in zip(entries, records):
        assert record.seed == table.seed[i, k] == bench.pipeline_seed(i, k)
        assert record.val_acc == table.val_acc[i, k]
        assert record.curve == table.curve[i, k].tolist()
        assert record.test_acc == table.test_acc[i, k]
        assert (record.flops, record.params) == (table.flops[i], table.params[i])


def test_platform_mismatch_names_the_kernel_fields_that_differ():
    here = bench.build_platform()
    assert set(bench.KERNEL_FIELDS) <= set(here) and set(here["env"]) == set(bench.PLATFORM_ENV_VARS)
    assert isinstance(here["cpu_model"], str) and here["torch_threads"] == 1  # conftest: one thread, as the build
    assert bench.platform_mismatch(here) is None
    assert bench.platform_mismatch({**here, "numpy": "0.0", "python": "2.7"}) is None
    other = {**here, "cpu_capability": "AVX2", "env": {**here["env"], "DNNL_MAX_CPU_ISA": "AVX2"}}
    reason = bench.platform_mismatch(other)
    assert reason.startswith("table built on cpu_capability='AVX2', env=") and "this machine has" in reason
    assert "no build platform" in bench.platform_mismatch(None)
    # a table built on the NAS cells' earlier kernels (recorded before the field) does not retrain bit for bit
    before = {k: v for k, v in here.items() if k != "nas_kernels"}
    assert bench.platform_mismatch(before) == f"table built on nas_kernels=None; this machine has nas_kernels={KERNELS}"


@pytest.mark.slow
def test_retraining_reproduces_entries_exactly(table):
    """Same seed, CPU, one torch thread, same platform: the stored records are reproduced bit for bit.

    Bit-exact retraining holds on one (torch version, CPU ISA, kernel settings) platform only,
    so this runs where the table records the platform of this machine and skips elsewhere
    (the packaged table was built before the record). test_build_resumes_and_compacts
    checks the same property on a table built here; test_retraining_agrees_within_seed_noise
    checks the packaged table on every machine.
    """
    reason = bench.platform_mismatch(table.meta.get("build_platform"))
    if reason:
        pytest.skip(reason)
    entries = [(0, 0), (2591, 0), (int(table.extra[3]), 2)]
    _assert_exact(entries, _retrain(entries, table), table)


RETRAIN_ENTRIES = [(0, 0), (1000, 0), (2591, 0), (3000, 0), (5000, 0), (60, 2), (1201, 1), (3129, 2)]
"""Main entries spread over the space and extra-seed replicates (60, 1201, 3129 are in the 3-seed subset)."""


@pytest.mark.slow
def test_retraining_agrees_within_seed_noise(table):
    """Retrained with their stored seeds on any machine, 8 entries agree with the table as a statistic.

    The bound: RMS of (retrained - stored) validation accuracy <= half the table's seed noise
    sigma (pooled std over the 3-seed subset, about 0.074). Different CPU kernels change the
    last bits, which 4 epochs of SGD amplify into a few differently classified validation
    images (measured here, an AVX-512 Xeon against the packaged table: RMS 0.005, 3 of 8
    entries differ, by 0.003-0.014). A stale table or changed training code acts like a new
    seed: two independent seeds differ by sqrt(2) sigma, about 0.10 RMS (measured here with
    other seeds for these entries: 0.099), so the test fails.

    Why it can fail on a correct table: the bound is statistical. On a platform whose
    kernels differ more (another architecture, a torch version with other reduction orders),
    the amplified differences can grow towards those of an independent seed; the test then
    says that this machine cannot retrain the table, not that the table is wrong. FLOPs and
    params do not depend on kernels and must be equal everywhere.
    """
    assert all(table.status[i, k] == 0 for i, k in RETRAIN_ENTRIES)
    assert {k for _, k in RETRAIN_ENTRIES} == {0, 1, 2}
    records = _retrain(RETRAIN_ENTRIES, table)
    for (i, k), record in zip(RETRAIN_ENTRIES, records):
        assert record.seed == table.seed[i, k]
        assert (record.flops, record.params) == (table.flops[i], table.params[i])
    diff = np.array([r.val_acc - table.val_acc[i, k] for (i, k), r in zip(RETRAIN_ENTRIES, records)])
    sigma = table_stats(table)["seed_noise_val_acc"]
    assert 0.05 < sigma < 0.1
    rms = float(np.sqrt(np.mean(diff ** 2)))
    assert rms <= sigma / 2, f"retraining differs by {rms:.4f} RMS (> sigma/2 = {sigma / 2:.4f}): {diff.round(4)}"


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
    assert partial.meta["build_platform"] == bench.build_platform()
    assert bench.platform_mismatch(partial.meta["build_platform"]) is None
    _assert_exact(jobs, _retrain(jobs, partial), partial)  # same machine: bit for bit
    ev = TableEvaluator(out, replicate=0)
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


# -- bad arguments and bad files: one line, exit code 2, nothing left behind ----------------------------
def _raw_lines(table, entries, platforms=None, fingerprint=None):
    """A raw build file holding packaged table entries, as the build writes it (``platforms``: one per entry)."""
    fingerprint = fingerprint or bench.space_fingerprint(bench_spaces(), bench.BENCH_BUDGET)
    lines = [json.dumps({"fingerprint": fingerprint})]
    for (i, k), platform in zip(entries, platforms or [None] * len(entries)):
        lines.append(json.dumps({
            "index": i, "replicate": k, "seed": int(table.seed[i, k]), "status": "ok",
            "val_acc": float(table.val_acc[i, k]), "test_acc": float(table.test_acc[i, k]),
            "flops": int(table.flops[i]), "params": int(table.params[i]), "curve": table.curve[i, k].tolist(),
            "train_seconds": float(table.train_seconds[i, k]), "error": None, "finished_at": 0.0,
            "platform": platform,
        }))
    return "\n".join(lines) + "\n"


@pytest.fixture
def workdir(tmp_path, monkeypatch, table):
    """A working folder holding the paths the refusal tests name; no worker pool can start in it."""
    from types import SimpleNamespace

    def no_pool(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench_build, "multiprocessing", SimpleNamespace(get_context=no_pool))
    (tmp_path / "rawdir").mkdir()
    (tmp_path / "outdir.npz").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "existing.npz").write_bytes(b"x")
    (tmp_path / "notraw.jsonl").write_bytes(bytes(range(256)))
    (tmp_path / "good.jsonl").write_text(_raw_lines(table, [(0, 0), (60, 2)]))
    other = bench.space_fingerprint(bench_spaces(), bench.BENCH_BUDGET)
    other["budget"]["epochs"] = 99
    (tmp_path / "other.jsonl").write_text(_raw_lines(table, [(0, 0)], fingerprint=other))
    (tmp_path / "badline.jsonl").write_text(_raw_lines(table, [(0, 0)]) + "{not json\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    yield {"ro": str(ro) if os.geteuid() else "/proc"}  # root writes through file modes; /proc refuses it
    ro.chmod(0o755)


def _refused(capsys, tmp_path, argv, match):
    from ma2ml.cli import main

    before = sorted(tmp_path.rglob("*"))
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("ma2ml bench: error: "), err
    assert match in err, err
    assert sorted(tmp_path.rglob("*")) == before, "a refusal left files behind"


@pytest.mark.parametrize("args, match", [
    (["--out", "new/t.npz", "--limit", "-1"], "limit must be an integer >= 1"),
    (["--out", "new/t.npz", "--limit", "0"], "limit must be an integer >= 1"),
    (["--out", "new/t.npz", "--workers", "0"], "--workers must be an integer in 1..64"),
    (["--out", ""], "--out is empty"),
    (["--out", "t.npz", "--raw", ""], "--raw is empty"),
    (["--out", "new/t.jsonl"], "table new/t.jsonl must end in .npz"),
    (["--out", "new/t.npz", "--raw", "new/t.npz"], "the raw results file and the table are the same file"),
    (["--out", "new/t.npz", "--raw", "rawdir"], "raw build file rawdir is a folder"),
    (["--out", "new/t.npz", "--raw", "afile/t.jsonl"], "afile is not a folder"),
    (["--out", "new/t.npz", "--raw", "{ro}/new/t.jsonl"], "is not writable"),
    (["--out", "new/t.npz", "--raw", "notraw.jsonl"], "notraw.jsonl is not a raw build file"),
    (["--out", "new/t.npz", "--raw", "other.jsonl"], "built for another space or budget"),
    (["--out", "outdir.npz"], "table outdir.npz is a folder"),
    (["--out", "afile/t.npz"], "afile is not a folder"),
    (["--out", "{ro}/new/t.npz"], "is not writable"),
    (["--out", "existing.npz"], "existing.npz exists; pass --force to overwrite it"),
])
def test_cli_build_refuses_bad_arguments_before_training(workdir, tmp_path, capsys, args, match):
    _refused(capsys, tmp_path, ["bench", "build", "--quiet", *(a.format(**workdir) for a in args)], match)


@pytest.mark.parametrize("args, match", [
    (["--raw", "nothere.jsonl", "--out", "t.npz"], "no raw build file at nothere.jsonl"),
    (["--raw", "rawdir", "--out", "t.npz"], "raw build file rawdir is a folder"),
    (["--raw", "notraw.jsonl", "--out", "t.npz"], "notraw.jsonl is not a raw build file"),
    (["--raw", "other.jsonl", "--out", "t.npz"], "built for another space or budget"),
    (["--raw", "badline.jsonl", "--out", "t.npz"], "badline.jsonl line 3 is not a JSON result"),
    (["--raw", "good.jsonl", "--out", ""], "--out is empty"),
    (["--raw", "", "--out", "t.npz"], "--raw is empty"),
    (["--raw", "good.jsonl", "--out", "good.jsonl"], "table good.jsonl must end in .npz"),
    (["--raw", "good.jsonl", "--out", "new/t.jsonl"], "must end in .npz"),
    (["--raw", "good.jsonl", "--out", "outdir.npz"], "table outdir.npz is a folder"),
    (["--raw", "good.jsonl", "--out", "afile/t.npz"], "afile is not a folder"),
    (["--raw", "good.jsonl", "--out", "{ro}/new/t.npz"], "is not writable"),
    (["--raw", "good.jsonl", "--out", "existing.npz"], "existing.npz exists; pass --force to overwrite it"),
])
def test_cli_compact_refuses_bad_arguments(workdir, tmp_path, capsys, args, match):
    _refused(capsys, tmp_path, ["bench", "compact", *(a.format(**workdir) for a in args)], match)


def test_compact_records_the_build_platform_and_overwrites_only_with_force(workdir, tmp_path, capsys, table):
    from ma2ml.cli import main

    here = bench.build_platform()
    (tmp_path / "one.jsonl").write_text(_raw_lines(table, [(0, 0), (60, 2)], [here, here]))
    assert main(["bench", "compact", "--raw", "one.jsonl", "--out", "existing.npz", "--force"]) == 0
    assert "table written to existing.npz" in capsys.readouterr().out
    built = load_table(tmp_path / "existing.npz")
    assert built.meta["build_platform"] == here and built.meta["entries"] == 2
    assert built.val_acc[60, 2] == table.val_acc[60, 2] and built.curve[0, 0].tolist() == table.curve[0, 0].tolist()
    (tmp_path / "mixed.jsonl").write_text(_raw_lines(table, [(0, 0), (1, 0)], [here, {**here, "torch": "0"}]))
    for raw in ("mixed.jsonl", "good.jsonl"):  # two platforms; results that record none
        meta = load_table(bench.compact(raw, tmp_path / f"{raw}.npz")).meta
        assert meta["build_platform"] is None and meta["entries"] == 2


def _table_arrays():
    with np.load(TABLE_PATH) as data:
        return {k: data[k] for k in data.files}


def _meta(**changes):
    meta = json.loads(str(_table_arrays()["meta"]))
    return np.array(json.dumps({**meta, **changes}))


def _npz(path, **changes):
    """The packaged table's arrays with ``changes`` (``None`` drops an array), uncompressed."""
    arrays = {k: v for k, v in {**_table_arrays(), **changes}.items() if v is not None}
    np.savez(path, **arrays)


def _corrupt(kind, path):
    """Write a corrupted table of ``kind`` at ``path``."""
    arrays = _table_arrays()
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        path.write_bytes(TABLE_PATH.read_bytes()[:50_000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "npy, not npz":
        with path.open("wb") as fh:
            np.save(fh, arrays["val_acc"])
    elif kind == "zip, not npz":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "hello")
    elif kind == "wrong keys":
        np.savez(path, a=np.zeros(3), b=np.ones(2))
    elif kind == "missing array":
        _npz(path, curve=None)
    elif kind == "short array":
        _npz(path, val_acc=arrays["val_acc"][:3, 0])
    elif kind == "wrong dtype":
        _npz(path, status=arrays["status"].astype(np.float32))
    elif kind == "object array":
        _npz(path, extra=np.array([{"a": 1}], dtype=object))
    elif kind == "status out of range":
        _npz(path, status=np.full_like(arrays["status"], 7))
    elif kind == "corrupt member":
        _npz(path)
        data = bytearray(path.read_bytes())
        at = data.index(b"val_acc.npy") + 2000
        data[at:at + 64] = bytes(64)
        path.write_bytes(bytes(data))
    elif kind == "meta not JSON":
        _npz(path, meta=np.array("{not json"))
    elif kind == "meta not an object":
        _npz(path, meta=np.array("[1, 2]"))
    elif kind == "meta of another budget":
        _npz(path, meta=_meta(budget={**json.loads(str(arrays["meta"]))["budget"], "epochs": 99}))
    elif kind == "meta entries":
        _npz(path, meta=_meta(entries=3))
    elif kind == "meta statuses":
        _npz(path, meta=_meta(statuses=["ok"]))


CORRUPTIONS = {
    "random bytes": "not an .npz archive (4,096 bytes without a zip directory",
    "truncated": "not an .npz archive (50,000 bytes without a zip directory",
    "empty": "not an .npz archive (an empty file)",
    "folder": "is a folder, not an .npz file",
    "npy, not npz": "not an .npz archive",
    "zip, not npz": "missing arrays ['curve', 'extra', 'flops', 'meta', 'params', 'seed', 'status', 'test_acc', "
                    "'train_seconds', 'val_acc']; unexpected arrays ['readme.txt']",
    "wrong keys": "unexpected arrays ['a', 'b']",
    "missing array": "missing arrays ['curve']",
    "short array": "array 'val_acc' has shape (3,), expected (5184, 3)",
    "wrong dtype": "array 'status' has dtype float32, expected integer",
    "object array": "array 'extra' is unreadable (ValueError: Object arrays cannot be loaded",
    "status out of range": "array 'status' holds values outside -1..4",
    "corrupt member": "array 'val_acc' is unreadable (BadZipFile: Bad CRC-32",
    "meta not JSON": "'meta' is not valid JSON",
    "meta not an object": "'meta' is a JSON list, expected an object",
    "meta of another budget": "built for another space or budget than 'digits-bench'",
    "meta entries": "meta 'entries' is 3, but the arrays hold 6220",
    "meta statuses": "meta 'statuses' is ['ok'], expected",
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupted_table_is_one_clear_error_everywhere(kind, tmp_path, capsys):
    from ma2ml.cli import main

    path = tmp_path / "bad.npz"
    _corrupt(kind, path)
    with pytest.raises(ValueError) as info:
        load_table(path)
    message = str(info.value)
    assert message.startswith(f"benchmark table {path}: ") and CORRUPTIONS[kind] in message and "\n" not in message
    with pytest.raises(ValueError, match="^benchmark table "):  # at construction, not at the first step
        pettingzoo.make("parallel", PID, table=path)
    with pytest.raises(ValueError, match="^benchmark table "):
        gymnasium.make(GID, table=str(path))
    assert main(["bench", "info", "--table", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"ma2ml bench: error: {message}\n"


def test_one_top_count():
    """One definition of "the top fraction" for every table (two copies once disagreed: 8 vs 7 at 7% of 100)."""
    from ma2ml.bench.hard import game
    from ma2ml.bench.properties import top_count

    assert game.top_count is top_count
    assert [top_count(100, 0.07), top_count(5184), top_count(10368, 0.001), top_count(5, 0.01)] == [7, 52, 11, 1]
