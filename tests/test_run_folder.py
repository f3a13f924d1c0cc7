"""The run folder under attack: two processes, damaged or replaced files, planted payloads.

Each test reproduces a fault an outside audit found (December 2026) and checks it now ends in
one clear error or a correct resume, never a silent loss.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ma2ml.cli import main
from ma2ml.runtime.store import EvalStore

TABLE = ["--env", "ma2ml/AutoML-DigitsBench-v0", "--env-arg", "table_seed=0"]


def search_args(out: Path, budget: int = 20, *extra: str) -> list[str]:
    return ["search", *TABLE, "--learner", "random", "--budget", str(budget), "--batch-size", "5",
            "--seed", "3", "--out", str(out), *extra]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def make_readonly(path: Path) -> None:
    """Make ``path`` unwritable, for root too (``chattr +i``); skip where that cannot be done."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here; root ignores permission bits")
    else:
        path.chmod(0o555 if path.is_dir() else 0o444)


def undo_readonly(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture
def finished_run(tmp_path, capsys) -> Path:
    out = tmp_path / "run"
    assert main(search_args(out)) == 0
    capsys.readouterr()
    return out


def test_second_process_on_one_out_is_refused_and_lock_dies_with_its_holder(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", *TABLE, "--learner", "ma2ml", "--budget", "3000", "--batch-size", "10", "--seed", "1",
            "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "ma2ml", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "checkpoint.pt").exists():
            assert proc.poll() is None, "the first search ended early"
            time.sleep(0.1)
        assert main(args) == 2  # the second process: one line naming the holder
        err = one_error_line(capsys)
        assert f"is in use by pid {proc.pid} on " in err and "choose another --out" in err
        assert proc.poll() is None, "the first search finished before the second one tried"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with EvalStore(out / "evals.sqlite") as store:
        stored = sorted(e.index for e in store.evaluations("search"))
    assert stored == list(range(len(stored))) and 0 < len(stored) < 3000
    args[args.index("3000")] = str(len(stored) + 20)  # the kernel released the lock: a resume works
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(stored) + 20))
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_empty_store_on_resume_is_one_error(finished_run, capsys):
    (finished_run / "evals.sqlite").write_bytes(b"")
    assert main(search_args(finished_run)) == 2
    assert "evals.sqlite is empty but the checkpoint records 20 evaluations" in one_error_line(capsys)
    assert (finished_run / "evals.sqlite").stat().st_size == 0  # left as it was


def test_holes_in_the_store_are_one_error(finished_run, capsys):
    with sqlite3.connect(finished_run / "evals.sqlite") as conn:
        conn.execute("DELETE FROM evaluations WHERE eval_index BETWEEN 3 AND 5")
    assert main(search_args(finished_run, 40)) == 2
    assert "holds 17 of the 20 evaluations the checkpoint recorded (missing indexes 3-5)" in one_error_line(capsys)


def test_results_are_rebuilt_from_the_store(finished_run, capsys):
    reference = (finished_run / "results.jsonl").read_bytes()
    timings = (finished_run / "timings.jsonl").read_bytes()
    for damage in (b"", reference[: len(reference) // 2], reference[:-7]):
        (finished_run / "results.jsonl").write_bytes(damage)
        (finished_run / "timings.jsonl").write_bytes(b"")
        assert main(search_args(finished_run)) == 0
        assert (finished_run / "results.jsonl").read_bytes() == reference
        assert (finished_run / "timings.jsonl").read_bytes() == timings


def test_compare_survives_an_emptied_best_json(tmp_path, capsys):
    args = ["compare", *TABLE, "--learners", "random", "--seeds", "2", "--budget", "10", "--batch-size", "5",
            "--out", str(tmp_path / "cmp")]
    assert main(args) == 0
    summary = (tmp_path / "cmp" / "summary.md").read_text()
    best = tmp_path / "cmp" / "runs" / "random" / "seed0" / "best.json"
    before = json.loads(best.read_text())
    best.write_text("")
    assert main(args) == 0
    assert json.loads(best.read_text())["evaluations"] == before["evaluations"] == 10
    assert (tmp_path / "cmp" / "summary.md").read_text() == summary


def test_read_only_store_is_a_store_error(finished_run, capsys):
    store = finished_run / "evals.sqlite"
    make_readonly(store)
    try:
        assert main(search_args(finished_run, 30)) == 2
        assert "is read-only" in one_error_line(capsys)
    finally:
        undo_readonly(store)


def test_identical_learner_args_are_not_refused(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", *TABLE, "--learner", "ppo", "--budget", "8", "--batch-size", "4", "--out", str(out),
            "--learner-arg", "net_arch=(32,32)"]
    assert main(args) == 0
    assert json.loads((out / "run.json").read_text())["learner_args"] == {"net_arch": [32, 32]}
    assert main(args) == 0  # the identical command: done, not "learner_args differ"
    assert main([*args[:-1], "net_arch=[32, 32]"]) == 0


def test_a_finished_run_extends_to_a_larger_budget(tmp_path, finished_run, capsys):
    first = (finished_run / "results.jsonl").read_text().splitlines()
    assert main(search_args(finished_run, 35)) == 0
    rows = (finished_run / "results.jsonl").read_text().splitlines()
    assert len(rows) == 35 and rows[:20] == first
    assert json.loads((finished_run / "best.json").read_text())["evaluations"] == 35
    assert json.loads((finished_run / "run.json").read_text())["budget"] == 35
    assert main(search_args(tmp_path / "direct", 35)) == 0  # the same as running 35 at once
    assert (tmp_path / "direct" / "results.jsonl").read_text().splitlines() == rows
    capsys.readouterr()
    assert main(search_args(finished_run, 10)) == 2
    assert "holds 35 evaluations already; --budget must be at least that" in one_error_line(capsys)


class _Payload:
    """Pickles to a call that creates a marker file: what an attacker would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_checkpoint_runs_nothing(finished_run, tmp_path, capsys):
    import torch

    marker = tmp_path / "pwned"
    state = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    state["best"] = _Payload(marker)
    torch.save(state, finished_run / "checkpoint.pt")
    assert main(search_args(finished_run, 30)) == 2
    err = one_error_line(capsys)
    assert "checkpoint.pt is not a readable search checkpoint" in err and "delete it" in err
    assert not marker.exists()


def test_a_pipeline_file_cannot_point_the_env_at_paths(tmp_path, capsys):
    import pickle

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil-cifar" / "cifar-10-batches-py"
    evil.mkdir(parents=True)
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"]:
        (evil / name).write_bytes(pickle.dumps(_Payload(marker)))
    store = tmp_path / "planted.sqlite"
    tokens = {"aug": [0] * 30, "nas": [0] * 20, "hpo": [0] * 6}
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"tokens": tokens, "settings": {
        "env": "ma2ml/AutoML-CIFAR10-v0", "env_args": {"data_dir": str(evil.parent), "store": str(store)}}}))
    assert main(["train", str(best), "--epochs", "1"]) == 2
    assert "cifar10 needs --data-dir" in one_error_line(capsys)
    assert not marker.exists() and not store.exists()
    best.write_text(json.dumps({"tokens": tokens, "settings": {"env": "ma2ml/AutoML-CIFAR10-v0",
                                                               "env_args": {"evaluator": "x", "spaces": 1}}}))
    assert main(["train", str(best), "--epochs", "1"]) == 2
    assert "settings.env_args names ['evaluator', 'spaces'], which a pipeline file may not set" in \
        one_error_line(capsys)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
def test_kill_9_of_compare_takes_its_workers_along(tmp_path):
    args = ["compare", *TABLE, "--learners", "ma2ml", "--seeds", "4", "--budget", "3000", "--batch-size", "10",
            "--jobs", "2", "--out", str(tmp_path / "cmp")]
    proc = subprocess.Popen([sys.executable, "-m", "ma2ml", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((tmp_path / "cmp").glob("runs/*/*/checkpoint.pt")):
            assert proc.poll() is None, "compare ended early"
            time.sleep(0.1)
        workers = [p for p in _children(proc.pid) if "python" in Path(f"/proc/{p}/cmdline").read_text()]
        assert workers, "no worker processes found"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)], "workers outlived their parent"
