"""The local process pool (:class:`ProcessPoolExecutor`) and :func:`die_with_parent`, which
every worker process ma2ml starts calls first.

Interrupts. The process that owns a pool owns its shutdown: its workers ignore SIGINT
(:func:`worker_initializer`), so a Ctrl-C, which the terminal sends to the whole process
group, reaches the owner alone as a ``KeyboardInterrupt``; the owner's cleanup (``close()``)
stops the workers, and no worker prints a traceback.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from multiprocessing.process import BaseProcess
from pathlib import Path

import cloudpickle
import torch

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.runtime.executors import (Job, WatchedExecutor, _Crashed, _Event, _exit_text, _Finished, _one_line,
                                          _Started)


def rebuild_evaluator(payload: bytes, device: str) -> Evaluator:
    """A worker's copy of the evaluator, on ``device``, with its data loaded."""
    evaluator: Evaluator = cloudpickle.loads(payload)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))  # so nothing lands on cuda:0 by default
    evaluator.use_device(torch.device(device))
    evaluator.data_facts()
    return evaluator


_PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal this process gets when its parent exits (``linux/prctl.h``)."""


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this process die when its parent does, even when the parent is killed with SIGKILL.

    Call it first thing in a worker process, passing the pid of the process that creates the
    pool; a module-level function, so a pool takes it as its ``initializer``::

        concurrent.futures.ProcessPoolExecutor(n, initializer=die_with_parent, initargs=(os.getpid(),))
        multiprocessing.get_context("spawn").Pool(n, die_with_parent, (os.getpid(),))

    On Linux it asks the kernel to SIGKILL this process when its parent exits
    (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, through libc), then, when ``parent_pid`` is given:

    * the parent is ``parent_pid``: nothing more to do;
    * the parent is a fork server that ``parent_pid`` started (``forkserver`` workers): the
      fork server outlives ``parent_pid`` while any of its children lives, so a daemon
      thread checks every half second that the fork server's parent is still ``parent_pid``
      and SIGKILLs this process once it is not;
    * anything else: ``parent_pid`` died before the ``prctl`` call (this process was
      re-parented); SIGKILLs this process now.

    On other platforms it does nothing (workers there can outlive a killed parent).
    ``PR_SET_PDEATHSIG`` fires when the parent *thread* that started this process exits: start
    the pool's workers from a thread that outlives them (the main thread; ``concurrent.futures``
    starts its workers at ``submit``, ``multiprocessing.Pool`` starts replacements from its own
    handler thread, which lives as long as the pool).
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    parent = os.getppid()
    if parent_pid is None or parent == parent_pid:
        return
    if _parent_of(parent) != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=_watch_fork_server, args=(parent, parent_pid), daemon=True,
                     name="ma2ml-die-with-parent").start()


def worker_initializer(parent_pid: int | None = None) -> None:
    """First thing in a worker process that the pool's owner stops: ignore SIGINT (the owner handles
    a Ctrl-C and stops its workers) and :func:`die_with_parent`. A pool's ``initializer``::

        concurrent.futures.ProcessPoolExecutor(n, initializer=worker_initializer, initargs=(os.getpid(),))
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)
    _forget_fork_server()


def _forget_fork_server() -> None:
    """In a process forked from one that had started a fork server (a process pool before, in the same
    interpreter): drop the inherited handle, so a pool made here starts its own server. (The inherited
    server is not this process's child: ``multiprocessing`` would fail with ECHILD, "No child processes".)"""
    from multiprocessing import forkserver

    server = forkserver._forkserver  # the module's singleton; its functions are bound to it
    if server._forkserver_pid is not None:  # set only by inheritance: a new worker has started no server
        with contextlib.suppress(OSError):
            os.close(server._forkserver_alive_fd)  # this process's copy only: the parent keeps its server
        server._forkserver_address = server._forkserver_alive_fd = server._forkserver_pid = None


def _parent_of(pid: int) -> int | None:
    """The parent pid of a live process (Linux ``/proc``); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state in ("Z", "X") else int(ppid)


def _watch_fork_server(server: int, owner: int) -> None:
    """SIGKILL this process once the fork server ``server`` is no longer ``owner``'s child."""
    while _parent_of(server) == owner:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


def _worker_main(conn: Connection, device: str, threads: int, owner: int) -> None:
    """A pool worker: loads evaluators and evaluates jobs until told to stop or orphaned.

    Dies with ``owner``, the process that runs the pool, and leaves SIGINT to it (:func:`worker_initializer`).
    Messages in: ``("load", token, payload)``, ``("eval", tid, actions, seed)``, ``None``.
    Out: ``("ready",)`` once started, ``("loaded", token)``, ``("error", text)`` (cannot
    rebuild the evaluator; exits), ``("start", tid)`` then ``("done", tid, record)``.
    """
    worker_initializer(owner)
    conn.send(("ready",))
    torch.set_num_threads(threads)
    evaluator: Evaluator | None = None
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the parent is gone
            return
        if msg is None:
            return
        if msg[0] == "load":
            try:
                evaluator = rebuild_evaluator(msg[2], device)
            except Exception as exc:
                conn.send(("error", _one_line(exc)))
                return
            conn.send(("loaded", msg[1]))
            continue
        _, tid, actions, seed = msg
        conn.send(("start", tid))
        conn.send(("done", tid, evaluator.evaluate(actions, seed)))


@dataclass
class _Worker:
    """One slot of the pool: its device and, while alive, its process."""

    device: str
    process: BaseProcess | None = None
    conn: Connection | None = None
    token: str | None = None
    """The evaluator this worker has loaded."""
    tid: int | None = None
    """The job it is running (None: idle)."""
    ready: bool = False
    """Whether this process has started up (sent ``"ready"``): one that exits with an error
    before has failed to import the user's script."""


def available_cpus() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class ProcessPoolExecutor(WatchedExecutor):
    """A pool of local worker processes, each pinned to a device (see the module docstring).

    ``device="auto"`` uses the visible GPUs when there are any (``workers_per_gpu`` workers
    on each, jobs spread round-robin), else ``workers`` CPU workers (default: one per core).
    Workers are spawned on first use (or by :meth:`start`) and kept across batches; a killed
    or crashed worker is replaced by a fresh one on the same device.
    """

    def __init__(
        self,
        workers: int | None = None,
        workers_per_gpu: int = 1,
        device: str = "auto",
        threads: int | None = None,
        retries: int = 1,
        time_limit: float | None = None,
        start_method: str | None = None,
    ) -> None:
        super().__init__(retries=retries, time_limit=time_limit)
        if device not in ("auto", "cpu", "cuda"):
            raise UserError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if workers is not None and workers < 1:
            raise UserError(f"workers must be >= 1, got {workers}")
        if workers_per_gpu < 1:
            raise UserError(f"workers_per_gpu must be >= 1, got {workers_per_gpu}")
        if threads is not None and threads < 1:
            raise UserError(f"threads must be >= 1 or None, got {threads}")
        methods = mp.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in methods or start_method == "fork":
            valid = [m for m in methods if m != "fork"]
            raise UserError(f"start_method {start_method!r} is not available here (fork is unsafe with torch); "
                             f"valid values are {valid}")
        gpus = torch.cuda.device_count() if device != "cpu" else 0
        if device == "cuda" and gpus == 0:
            raise UserError("device='cuda' but no GPU is visible; use device='cpu' or 'auto'")
        if gpus:
            if workers is not None:
                raise UserError("workers= counts CPU workers; on GPUs set workers_per_gpu (or device='cpu')")
            devices = [f"cuda:{g}" for _ in range(workers_per_gpu) for g in range(gpus)]
        else:
            devices = ["cpu"] * (workers if workers is not None else available_cpus())
        self.devices = devices
        """The device of each worker slot."""
        self.threads = threads if threads is not None else (1 if not gpus else max(available_cpus() // len(devices), 1))
        """torch threads in each worker (1 for CPU workers)."""
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":  # fork replacements from a server that has imported torch already
            self._ctx.set_forkserver_preload([__name__])
        self._workers = [_Worker(d) for d in devices]
        self._payload: tuple[str, bytes] | None = None
        self._next_tid = 0

    @property
    def workers(self) -> int:
        return len(self._workers)

    # -- worker lifecycle -----------------------------------------------------------------------
    def _spawn(self, w: _Worker) -> None:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child, w.device, self.threads, os.getpid()),
                                    daemon=True, name=f"ma2ml-eval-{w.device}")
        try:
            process.start()
        finally:
            child.close()
        w.process, w.conn, w.token, w.tid, w.ready = process, parent, None, None, False

    def _kill(self, w: _Worker) -> None:
        if w.process is not None:
            w.process.kill()
            w.process.join(10)
            w.process.close()
        if w.conn is not None:
            w.conn.close()
        w.process, w.conn, w.token, w.tid, w.ready = None, None, None, None, False

    def start(self, evaluator: Evaluator | None = None) -> None:
        """Spawn every worker now (and load ``evaluator`` in each, waiting until all have)."""
        for w in self._workers:
            if w.process is None:
                self._spawn(w)
        if evaluator is None:
            return
        self._bind(evaluator)
        waiting = [w for w in self._workers if w.token != self._payload[0]]
        for w in waiting:
            self._load(w)
        for w in waiting:  # until its "loaded" reply or the rebuild error; one that died is replaced on use
            while w.process.is_alive() and not any(m[0] == "loaded" for m in self._handle_messages(w, block=True)):
                pass

    def close(self) -> None:
        """Stop idle workers (5 s each to exit), kill busy ones at once."""
        idle = [w.conn is not None and w.tid is None for w in self._workers]
        for w, stop in zip(self._workers, idle):
            if stop:
                with contextlib.suppress(OSError):
                    w.conn.send(None)
        for w, stop in zip(self._workers, idle):
            if stop:
                w.process.join(5)
            self._kill(w)

    # -- WatchedExecutor hooks ------------------------------------------------------------------
    def _bind(self, evaluator: Evaluator) -> None:
        payload = cloudpickle.dumps(evaluator)
        self._payload = (hashlib.sha256(payload).hexdigest(), payload)

    def _load(self, w: _Worker) -> None:
        token, payload = self._payload
        w.conn.send(("load", token, payload))
        w.token = token

    def _has_room(self, in_flight: int) -> bool:
        return in_flight < len(self._workers)

    def _submit(self, job: Job) -> Hashable:
        slot = next(i for i, w in enumerate(self._workers) if w.tid is None)
        w = self._workers[slot]
        if w.process is None or not w.process.is_alive():
            self._kill(w)
            self._spawn(w)
        self._next_tid += 1
        w.tid = self._next_tid
        with contextlib.suppress(OSError):  # a worker that died just now is seen by _poll, and retried
            if w.token != self._payload[0]:
                self._load(w)
            w.conn.send(("eval", w.tid, job.actions, job.seed))
        return slot

    def _poll(self, handles: list[Hashable], timeout: float | None) -> list[_Event]:
        busy = [self._workers[h] for h in handles]
        ready = set(wait_ready([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        events: list[_Event] = []
        for slot, w in zip(handles, busy):
            if w.conn not in ready and w.process.sentinel not in ready:
                continue
            tid = w.tid
            messages = self._handle_messages(w, block=False)
            events += [_Started(slot) if m[0] == "start" else _Finished(slot, m[2])
                       for m in messages if m[0] in ("start", "done") and m[1] == tid]
            if w.tid is not None and not w.process.is_alive():
                code, started = w.process.exitcode, w.ready
                self._kill(w)
                if not started and code >= 0:
                    raise UserError(f"a worker process exited while starting (exit code {code}); a script that "
                                     "uses the process pool must keep its top level under "
                                     "`if __name__ == '__main__':` (workers are spawned and import it)")
                events.append(_Crashed(slot, f"worker process on {w.device} died ({_exit_text(code)})", retry=True))
        return events

    def _handle_messages(self, w: _Worker, block: bool) -> list[tuple]:
        """Read what a worker sent (``block``: wait for one message first); a rebuild error becomes ``ValueError``.

        At end of file, waits (10 s at most) for the worker to exit, so its sentinel tells the caller.
        """
        out = []
        try:
            while block or w.conn.poll():
                block = False
                msg = w.conn.recv()
                if msg[0] == "ready":
                    w.ready = True
                if msg[0] == "error":
                    self._kill(w)
                    raise UserError(f"a worker process cannot rebuild the evaluator: {msg[1]}; define the task "
                                     "and module spaces in an importable module or under "
                                     "`if __name__ == '__main__':` guarded scripts")
                if msg[0] == "done":
                    w.tid = None
                out.append(msg)
        except (EOFError, OSError):  # the worker died (and closed its end)
            w.process.join(10)
        return out

    def _cancel(self, handle: Hashable) -> None:
        self._kill(self._workers[handle])
