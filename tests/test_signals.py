"""Ctrl-C and SIGTERM during a search with worker processes: one line, no traceback, a resumable run.

The CLI turns SIGTERM into Ctrl-C's path (``ma2ml.cli.main``): one line "interrupted; rerun
the same command to resume" and exit code 128 + the signal (130 for SIGINT, 143 for
SIGTERM). Pool workers ignore SIGINT (``ma2ml.runtime.pool.worker_initializer``): the
terminal sends Ctrl-C to the whole process group, and the parent alone stops the run and
its workers. Each test runs a real search on the digits task (one epoch per training, two
worker processes), interrupts it after its first batch, then reruns the same command, which
must finish without training a stored evaluation again. The compare tests interrupt a
comparison with two run workers: the same line, and no worker outlives it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ma2ml.runtime.store import EvalStore

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="process groups and forkserver workers: Linux")]

BUDGET = 24
"""Evaluations of the interrupted search: enough that a starved test process still signals it mid-run (12 could
all finish on a loaded machine before the signal landed)."""


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "ma2ml", "search", "--env", "ma2ml/AutoML-Digits-v0", "--learner", "random",
            "--budget", str(BUDGET), "--batch-size", "4", "--env-arg", "epochs=1", "--env-arg", "executor=process",
            "--env-arg", "workers=2", "--out", str(out)]


def _foreground() -> None:
    """In the child, before exec: SIGINT at its default, as in a terminal's foreground job. A test runner
    started in the background by a shell inherits SIGINT ignored, and an ignored signal stays ignored across
    exec (Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stored(out: Path) -> dict[int, tuple[int, float]]:
    """Stored evaluations of the run: index -> (row id, finish time)."""
    with EvalStore(out / "evals.sqlite") as store:
        return {e.index: (e.id, e.finished_at) for e in store.evaluations("search")}


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_search_says_one_line_and_resumes(tmp_path, sig, code):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=_foreground)  # its own process group, as a terminal's foreground job
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (out / "checkpoint.pt").exists():
            assert proc.poll() is None, f"the search ended early: {proc.stderr.read()}"
            time.sleep(0.2)
        assert (out / "checkpoint.pt").exists(), "the search did not finish a batch in 300 s"
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C: the whole group, workers included
        else:
            proc.send_signal(sig)  # `kill PID`: the parent only
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert lines == ["ma2ml search: interrupted; rerun the same command to resume"], err
    assert proc.returncode == code, err
    before = stored(out)
    assert before and sorted(before) == list(range(len(before))) and len(before) < BUDGET
    rerun = subprocess.run(command(out), capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    after = stored(out)
    assert sorted(after) == list(range(BUDGET))
    assert {i: after[i] for i in before} == before  # nothing stored was trained or written again


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_compare_stops_its_run_workers(tmp_path, sig, code):
    out = tmp_path / "cmp"
    args = [sys.executable, "-m", "ma2ml", "compare", "--env", "ma2ml/AutoML-DigitsBench-v0", "--learners", "ma2ml",
            "--seeds", "2", "--budget", "3000", "--batch-size", "10", "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
                            preexec_fn=_foreground)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list(out.glob("runs/*/*/checkpoint.pt")):
            assert proc.poll() is None, f"compare ended early: {proc.stderr.read()}"
            time.sleep(0.2)
        workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert workers, "no run workers found"
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)  # the runs are stopped, not waited for (slack for a loaded machine)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err, err
    lines = [line.rsplit("\r", 1)[-1] for line in err.splitlines() if "interrupted" in line]
    assert lines == ["ma2ml compare: interrupted; rerun the same command to resume"], err
    assert proc.returncode == code, err
    deadline = time.time() + 15
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()], "run workers outlived the interrupt"
