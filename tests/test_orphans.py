"""Pool workers die with the process that owns the pool, even when it is killed with SIGKILL.

Each test runs a small script that starts a pool whose workers sleep, each leaving a file
named by its pid, SIGKILLs the script and waits for every worker to be gone (a zombie counts
as gone: nobody may reap it here).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="die_with_parent acts on Linux only")

SCRIPT = """
import concurrent.futures
import multiprocessing
import os
import sys
import time

import numpy as np

from ma2ml.runtime.pool import ProcessPoolExecutor, die_with_parent
from ma2ml.bench.synthetic import SyntheticEvaluator


def nap(folder):
    open(os.path.join(folder, str(os.getpid())), "w").close()
    time.sleep(600)


class Napping(SyntheticEvaluator):
    def __init__(self, folder):
        super().__init__(game=0)
        self.folder = folder

    def _evaluate(self, configs, seed):
        nap(self.folder)


def main(kind, folder):
    if kind == "concurrent.futures":
        pool = concurrent.futures.ProcessPoolExecutor(2, initializer=die_with_parent, initargs=(os.getpid(),))
        for _ in range(2):
            pool.submit(nap, folder)
    elif kind == "multiprocessing.Pool":
        pool = multiprocessing.get_context("spawn").Pool(2, die_with_parent, (os.getpid(),))
        pool.map_async(nap, [folder] * 2, chunksize=1)
    else:
        ev = Napping(folder)
        rng = np.random.default_rng(0)
        batch = [{a: s.sample(rng) for a, s in ev.spaces.items()} for _ in range(2)]
        ProcessPoolExecutor(workers=2, start_method=kind).map(ev, batch, [0, 1])
    time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:])
"""


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def worker_pids(script: subprocess.Popen, folder: Path, n: int, timeout: float) -> list[int]:
    """The pids of the script's sleeping workers, once ``n`` of them have left their file."""
    deadline = time.monotonic() + timeout
    while len(pids := [int(p.name) for p in folder.iterdir()]) < n:
        assert script.poll() is None and time.monotonic() < deadline, f"{len(pids)} of {n} workers started"
        time.sleep(0.1)
    return pids


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(not gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if not gone(p)]


@pytest.mark.parametrize("kind", ["concurrent.futures", "multiprocessing.Pool", "forkserver", "spawn"])
def test_workers_die_when_their_owner_is_killed(tmp_path, kind):
    path, folder = tmp_path / "owner.py", tmp_path / "workers"
    path.write_text(textwrap.dedent(SCRIPT))
    folder.mkdir()
    script = subprocess.Popen([sys.executable, str(path), kind, str(folder)])
    pids: list[int] = []
    try:
        pids += worker_pids(script, folder, 2, timeout=60)
        pids += sorted({parent_of(p) for p in pids} - {script.pid})  # the fork server, for "forkserver"
        assert len(pids) == 2 + (kind == "forkserver")
        script.kill()
        script.wait()
        assert wait_gone(pids, timeout=60) == []  # returns once they are gone; they would sleep 600 s
    finally:
        script.kill()
        script.wait()
        for p in pids:
            if not gone(p):
                os.kill(p, signal.SIGKILL)


def test_a_worker_whose_parent_died_before_the_call_kills_itself(tmp_path):
    """The race: the parent is gone before ``prctl``, so the kernel will never signal this process."""
    child = ("import os, sys, time\n"
             "from ma2ml.runtime.pool import die_with_parent\n"
             "parent = int(sys.argv[1])\n"
             "while os.getppid() == parent:\n"
             "    time.sleep(0.05)\n"
             "open(sys.argv[2] + '/orphaned', 'w').close()\n"
             "die_with_parent(parent)\n"
             "open(sys.argv[2] + '/survived', 'w').close()\n")
    shell = f'"{sys.executable}" -c "$1" $$ "$2" & echo $!'  # the shell exits at once: the child is orphaned
    done = subprocess.run(["sh", "-c", shell, "sh", child, str(tmp_path)], capture_output=True, text=True, timeout=10)
    assert wait_gone([int(done.stdout)], timeout=30) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orphaned"]
