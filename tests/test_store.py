"""The evaluation store: schema, write-before-report, cache, resume, SIGKILL, bad files."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ma2ml.envs import automl_v0
from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.envs.core.records import EvalRecord
from ma2ml.runtime.executors import InProcessExecutor, Job
from ma2ml.runtime.runlog import RunLog
from ma2ml.runtime.store import APPLICATION_ID, SCHEMA_VERSION, EvalStore, StoreError, pipeline_key

HERE = Path(__file__).resolve().parent


class CountingEvaluator(SyntheticEvaluator):
    """The synthetic game, counting its evaluations (and optionally slowed down)."""

    def __init__(self, delay: float = 0.0, **kw) -> None:
        super().__init__(**kw)
        self.delay = delay
        self.calls = 0

    def _evaluate(self, configs, seed):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return super()._evaluate(configs, seed)


def batches(evaluator, n_batches: int, size: int, seed: int = 0):
    """A deterministic 'learner': seeded random joint actions and training seeds per batch."""
    rng = np.random.default_rng(seed)
    for _ in range(n_batches):
        batch = [{a: s.sample(rng) for a, s in evaluator.spaces.items()} for _ in range(size)]
        yield batch, [int(s) for s in rng.integers(0, 2**31 - 1, size)]


def plain(record: EvalRecord) -> dict:
    return json.loads(json.dumps(record.to_dict()))


def test_schema_and_roundtrip(tmp_path):
    ev = CountingEvaluator(noise=0.1)
    path = tmp_path / "evals.sqlite"
    with EvalStore(path) as store:
        log = RunLog(store, ev, run_id="r1", env_id="synthetic", config={"learner": "random"})
        [(batch, seeds)] = batches(ev, 1, 5)
        records = log.evaluate_batch(batch, seeds)
        stored = log.records()
        assert [s.index for s in stored] == list(range(5))
        assert [plain(s.record) for s in stored] == [plain(r) for r in records]
        assert [s.key for s in stored] == [pipeline_key(ev.spaces, a) for a in batch]
        assert [s.seed for s in stored] == seeds and all(s.cached_from is None for s in stored)
        assert all(s.submitted_at <= s.finished_at for s in stored)
        run = store.run("r1")
        assert run.env_id == "synthetic" and run.config == {"learner": "random"}
        assert store.settings(run.settings_hash)["evaluator"] == ev.settings()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 5
    with pytest.raises(sqlite3.IntegrityError):  # one row per (run, index)
        conn.execute("INSERT INTO evaluations SELECT NULL, run_id, eval_index, settings_hash, pipeline_key, seed, "
                     "status, error, val_acc, train_seconds, submitted_at, finished_at, cached_from, record "
                     "FROM evaluations LIMIT 1")
    conn.close()


class CheckingExecutor(InProcessExecutor):
    """Checks, before producing each next record, that the previous one is already stored."""

    def __init__(self, store: EvalStore, run_id: str) -> None:
        super().__init__()
        self.store, self.run_id, self.checked = store, run_id, 0

    def _run(self, evaluator, jobs: list[Job]):
        for job in jobs:
            yield job.index, evaluator.evaluate(job.actions, job.seed)
            assert self.store.get(self.run_id, job.index) is not None
            self.checked += 1


def test_each_record_is_stored_before_the_next_runs(tmp_path):
    ev = CountingEvaluator()
    store = EvalStore(tmp_path / "s.sqlite")
    ev.executor = CheckingExecutor(store, "r")
    log = RunLog(store, ev, run_id="r")
    [(batch, seeds)] = batches(ev, 1, 4)
    log.evaluate_batch(batch, seeds)
    assert ev.executor.checked == 4


def test_bad_input_writes_nothing(tmp_path):
    ev = CountingEvaluator()
    store = EvalStore(tmp_path / "s.sqlite")
    log = RunLog(store, ev, run_id="r")
    [(batch, seeds)] = batches(ev, 1, 3)
    batch[2] = {**batch[2], "hpo": np.array([0, 99])}
    with pytest.raises(ValueError, match=r"batch item 2: agent 'hpo': token 1 \(t1\) = 99 is out of range"):
        log.evaluate_batch(batch, seeds)
    with pytest.raises(ValueError, match="needs as many seeds"):
        log.evaluate_batch(batch[:2], seeds)
    assert store.count() == 0 and ev.calls == 0 and log.position == 0


def test_cache_reuses_records_under_the_same_settings(tmp_path):
    store = EvalStore(tmp_path / "s.sqlite")
    ev = CountingEvaluator()
    [(batch, seeds)] = batches(ev, 1, 4)
    first = RunLog(store, ev, run_id="a", cache=True).evaluate_batch(batch + batch[:1], seeds + [5])
    assert ev.calls == 4  # the repeated pipeline was trained once
    again = RunLog(store, ev, run_id="b", cache=True).evaluate_batch(batch, [9, 9, 9, 9])
    assert ev.calls == 4 and [plain(r) for r in again] == [plain(r) for r in first[:4]]
    rows = store.evaluations("b")
    assert all(r.cached_from is not None for r in rows) and [r.record.seed for r in rows] == seeds
    RunLog(store, ev, run_id="c", cache=False).evaluate_batch(batch, seeds)
    assert ev.calls == 8
    other = CountingEvaluator(noise=0.2)  # other settings: no reuse
    RunLog(store, other, run_id="d", cache=True).evaluate_batch(batch, seeds)
    assert other.calls == 4
    RunLog(store, ev, run_id="e", seed_policy="fixed:3", cache=True).evaluate_batch(batch, seeds)
    assert ev.calls == 12


class FailingEvaluator(CountingEvaluator):
    def _evaluate(self, configs, seed):
        self.calls += 1
        raise RuntimeError("flaky machine")


def test_cache_does_not_reuse_machine_dependent_failures(tmp_path):
    store = EvalStore(tmp_path / "s.sqlite")
    ev = FailingEvaluator()
    [(batch, seeds)] = batches(ev, 1, 2)
    records = RunLog(store, ev, run_id="a", cache=True).evaluate_batch(batch, seeds)
    assert [r.status for r in records] == ["failed", "failed"] and "flaky machine" in records[0].error
    RunLog(store, ev, run_id="b", cache=True).evaluate_batch(batch, seeds)
    assert ev.calls == 4


def test_resume_serves_stored_indices_and_checks_pipelines(tmp_path):
    path = tmp_path / "s.sqlite"
    ev = CountingEvaluator()
    plan = list(batches(ev, 3, 4))
    log = RunLog(EvalStore(path), ev, run_id="r")
    for batch, seeds in plan[:2]:
        log.evaluate_batch(batch, seeds)
    assert ev.calls == 8
    resumed = RunLog(EvalStore(path), ev, run_id="r")
    for batch, seeds in plan:
        resumed.evaluate_batch(batch, seeds)
    assert ev.calls == 12 and resumed.position == 12
    assert [s.index for s in resumed.records()] == list(range(12))
    moved = RunLog(EvalStore(path), ev, run_id="r")
    moved.seek(4)
    moved.evaluate_batch(*plan[1])  # a restored learner continues at its position
    assert ev.calls == 12
    with pytest.raises(StoreError, match="holds another pipeline at evaluation 0"):
        RunLog(EvalStore(path), ev, run_id="r").evaluate_batch(*plan[1])
    with pytest.raises(StoreError, match="other evaluator settings"):
        RunLog(EvalStore(path), CountingEvaluator(noise=0.5), run_id="r")


def write_run(path: str, run_id: str, n_batches: int, size: int, delay: float) -> int:
    """A writer (run in a subprocess by the SIGKILL test): the whole planned run; returns evaluations run."""
    ev = CountingEvaluator(delay=delay)
    log = RunLog(EvalStore(path), ev, run_id=run_id)
    for batch, seeds in batches(ev, n_batches, size):
        log.evaluate_batch(batch, seeds)
    return ev.calls


def test_sigkill_mid_run_leaves_a_consistent_store_and_resume_completes(tmp_path):
    path = tmp_path / "s.sqlite"
    n_batches, size = 25, 4
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_store; "
            f"test_store.write_run({str(path)!r}, 'run', {n_batches}, {size}, 0.03)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists():
                with EvalStore(path) as reader:
                    if reader.count() >= 22:  # mid-batch for some writes: size 4 does not divide 22
                        break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with EvalStore(path) as store:
        before = {s.index: plain(s.record) for s in store.evaluations("run")}
    total = n_batches * size
    assert 22 <= len(before) < total
    ran = write_run(str(path), "run", n_batches, size, 0.0)
    assert ran == total - len(before)  # nothing finished before the kill ran again
    with EvalStore(path) as store:
        rows = store.evaluations("run")
    assert [r.index for r in rows] == list(range(total))  # every evaluation exactly once
    assert all(plain(rows[i].record) == rec for i, rec in before.items())


def test_env_writes_every_evaluation(tmp_path):
    path = tmp_path / "env.sqlite"
    env = automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), store=str(path), run_id="env-run",
                                 cache=True)
    env.reset(seed=1)
    actions = {a: env.action_space(a).sample() for a in env.agents}
    _, rewards, _, _, infos = env.step(actions)
    records = env.evaluate_batch([actions, actions])
    assert [r.seed for r in records] == [infos["aug"]["seed"]] * 2  # cached: same record
    store = env.run_log.store
    rows = store.evaluations("env-run")
    assert [r.index for r in rows] == [0, 1, 2] and rows[1].cached_from == rows[0].id
    assert store.run("env-run").env_id == "automl_v0/digits"
    assert store.settings(rows[0].settings_hash)["seed_policy"] == "drawn"
    env.close()
    with pytest.raises(ValueError, match="need a store"):
        automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), cache=True)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_store(path: Path) -> None:
    ev = CountingEvaluator()
    with EvalStore(path) as store:
        log = RunLog(store, ev, run_id="r")
        for batch, seeds in batches(ev, 10, 20):
            log.evaluate_batch(batch, seeds)


@pytest.mark.parametrize("damage, match", [
    ("garbage", "is not an SQLite database"),
    ("truncated", "is damaged or truncated"),
    ("foreign", r"is an SQLite database of another program \(tables \['songs'\]\)"),
    ("newer", "has schema version 99, newer than this ma2ml's"),
    ("folder", "is a folder"),
])
def test_unusable_files_get_one_line_and_stay_untouched(tmp_path, damage, match):
    path = tmp_path / "evals.sqlite"
    if damage == "garbage":
        path.write_text("step,reward\n1,0.5\n")
    elif damage == "truncated":
        make_store(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE songs (title TEXT)")
        conn.commit()
        conn.close()
    elif damage == "newer":
        make_store(path)
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version = 99")
        conn.commit()
        conn.close()
    else:
        path.mkdir()
    before = sha(path) if path.is_file() else None
    with pytest.raises(StoreError, match=match) as info:
        EvalStore(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert isinstance(info.value, ValueError)  # the CLI turns it into one line and exit code 2
    if before is not None:
        assert sha(path) == before


def test_new_store_in_a_new_folder_and_concurrent_reader(tmp_path):
    path = tmp_path / "deep" / "er" / "s.sqlite"
    ev = CountingEvaluator()
    writer = RunLog(EvalStore(path), ev, run_id="w")
    reader = EvalStore(path)
    for k, (batch, seeds) in enumerate(batches(ev, 3, 2)):
        writer.evaluate_batch(batch, seeds)
        assert reader.count("w") == 2 * (k + 1)
    assert os.path.exists(path)


def test_store_locked_by_another_program_is_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    make_store(path)
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreError, match="cannot be opened for writing .*database is locked.*no other program holds"):
        EvalStore(path, timeout=0.1)
    holder.rollback()
    holder.close()
    assert EvalStore(path).count() == 200
