"""Executors: where the evaluations of a batch run, and what happens when one of them fails.

An :class:`Executor` takes an evaluator and a batch of (joint action, seed) pairs and yields
``(position in the batch, EvalRecord)`` pairs as the evaluations finish. Attach one to an
evaluator (``evaluator.executor = ...``, or ``parallel_env(executor=...)``) and
``Evaluator.evaluate_batch`` runs through it; records always come back in batch order there.

* :class:`InProcessExecutor`: in the calling process, one after the other (the reference).
* :class:`ProcessPoolExecutor`: a local pool of worker processes: one per GPU
  (``workers_per_gpu=k`` for k per GPU), or ``workers`` CPU workers (default: one per core)
  on a machine without one. CPU workers run torch with 1 thread.
* :class:`RayExecutor`: each evaluation a Ray task with ``num_cpus=1`` and its share of a GPU
  (``gpus_per_task``, fractional allowed), on a local Ray instance or a cluster
  (``address=...``); needs ``pip install 'ma2ml[ray]'``.

Shipping the evaluator. Workers rebuild the evaluator from a cloudpickle of it (tasks hold
lambdas, which plain pickle refuses). Functions and classes of importable modules travel by
reference and are imported in the worker; those of ``__main__`` travel by value. A task or
module space defined in a user's script therefore works with the process pool as long as
the script keeps its top level under ``if __name__ == "__main__":``: workers are started with
``forkserver`` (Linux; ``spawn`` elsewhere), never plain ``fork`` (unsafe once torch runs
threads), and import the script as Python's spawn does; a worker that exits with an error
before it has started up (its first message, sent once the script is imported) raises a
``ValueError`` saying so. The fork server imports torch and ma2ml once, so a replacement
worker starts in well under a second. On a Ray cluster, ma2ml must be installed on every
node; ship a user module that is not installed there with
``cloudpickle.register_pickle_by_value(module)``. Loaded data is not shipped
(``Evaluator.__getstate__`` drops it): every worker loads its splits once and keeps them
for the following evaluations; an evaluator that cannot be rebuilt there (an exception in
the worker) raises a ``ValueError`` with the worker's message.

Orphans. Process-pool workers die with the process that owns the pool, even when it is
killed with SIGKILL (Linux only; :func:`die_with_parent`, which other pools take as their
initializer). A forkserver worker's parent is the fork server, which outlives a killed owner
for as long as any of its workers lives (each holds the server's "alive" pipe), so the
workers watch the owner themselves and are gone within a second, the fork server with them.
``ProcessPoolExecutor.close()`` gives idle workers 5 s to exit and kills busy ones at once.

Faults, each ending in a record with a status and the batch going on:

* training diverges (NaN loss) -> ``diverged``; CUDA out of memory -> ``oom`` (both caught
  inside ``Evaluator.evaluate``, so they need no executor);
* an evaluation runs past ``time_limit`` seconds, measured from outside the worker ->
  ``timeout``: the worker process (or Ray task) is killed and replaced. For the process
  pool the clock starts when the worker picks the job up; for Ray, when the task is
  submitted (at most as many tasks are in flight as the cluster has slots);
* the worker process dies (a segfault, ``os._exit``, the kernel's OOM killer), also while
  it loads the evaluator or its data -> the job is run again, up to ``retries`` more times
  (by the pool, or by Ray's ``max_retries``), then ``failed``, the error naming the exit
  code (and the signal: ``exit code -9, SIGKILL``).

CPU determinism: a CPU training's result depends on torch's thread count. Workers use 1
thread, so the in-process reference gives the same records when it also runs with 1
thread (``InProcessExecutor(threads=1)`` or ``torch.set_num_threads(1)``); only the
wall-clock ``train_seconds`` differ.
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
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait as wait_ready
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import cloudpickle
import torch

from ma2ml.envs.evaluators import Actions, EvalRecord, Evaluator
from ma2ml.envs.threads import torch_threads

EXECUTORS = ("inprocess", "process", "ray")
"""Names accepted by :func:`make_executor` (and the env's ``executor=`` argument)."""


@dataclass
class Job:
    """One evaluation of a batch, as shipped to a worker."""

    index: int
    """Position in the batch."""
    actions: dict[str, list[int]]
    """Validated tokens per agent (plain lists: cheap to pickle)."""
    seed: int
    """Training seed."""
    pipeline: dict[str, Any]
    """The decoded pipeline, for the records the executor writes itself (timeout, failed)."""
    attempts: int = 0
    """Starts that ended with the worker dead."""


def prepare_jobs(evaluator: Evaluator, batch: Sequence[Actions], seeds: Sequence[int]) -> list[Job]:
    """Validate a whole batch before anything runs; one ``ValueError`` naming the bad item."""
    if len(batch) != len(seeds):
        raise ValueError(f"a batch of {len(batch)} joint actions needs as many seeds, got {len(seeds)}")
    jobs = []
    for i, (actions, seed) in enumerate(zip(batch, seeds)):
        try:
            pipeline = evaluator.pipeline_json(actions)
        except ValueError as exc:
            raise ValueError(f"batch item {i}: {exc}") from None
        tokens = {a: space.check(actions[a], a).tolist() for a, space in evaluator.spaces.items()}
        jobs.append(Job(i, tokens, int(seed), pipeline))
    return jobs


def fault_record(job: Job, status: str, error: str, seconds: float) -> EvalRecord:
    """The record of an evaluation that the executor ended (the evaluator never returned)."""
    return EvalRecord(status=status, error=error, seed=job.seed, pipeline=job.pipeline, train_seconds=seconds)


class Executor(ABC):
    """Runs the evaluations of a batch (see the module docstring). Close it when done."""

    def run(self, evaluator: Evaluator, batch: Sequence[Actions], seeds: Sequence[int]) -> Iterator[tuple[int, EvalRecord]]:
        """``(position, record)`` pairs as the evaluations finish, every position once.

        The batch is validated first: bad input raises ``ValueError`` before anything runs.
        """
        return self._run(evaluator, prepare_jobs(evaluator, batch, seeds))

    def map(self, evaluator: Evaluator, batch: Sequence[Actions], seeds: Sequence[int]) -> list[EvalRecord]:
        """The records of a batch, in batch order."""
        out: list[EvalRecord | None] = [None] * len(batch)
        for i, record in self.run(evaluator, batch, seeds):
            out[i] = record
        return out  # type: ignore[return-value]  (every position is filled)

    @abstractmethod
    def _run(self, evaluator: Evaluator, jobs: list[Job]) -> Iterator[tuple[int, EvalRecord]]:
        """Evaluate validated jobs; yield each ``(job.index, record)`` once."""

    def close(self) -> None:
        """Release workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Evaluates in the calling process, in batch order: the reference the others must match.

    No time limit from outside and no retries here (a crash ends the caller); divergence
    and out-of-memory still end in their statuses.
    """

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        self.threads = threads
        """torch threads while evaluating (``None``: leave torch's setting alone)."""

    def _run(self, evaluator: Evaluator, jobs: list[Job]) -> Iterator[tuple[int, EvalRecord]]:
        for job in jobs:
            with torch_threads(self.threads):
                record = evaluator.evaluate(job.actions, job.seed)
            yield job.index, record


@dataclass
class _Started:
    handle: Hashable


@dataclass
class _Finished:
    handle: Hashable
    record: EvalRecord


@dataclass
class _Crashed:
    handle: Hashable
    error: str
    retry: bool
    """Whether this executor should run the job again (False where the backend already retried)."""


_Event = _Started | _Finished | _Crashed


class WatchedExecutor(Executor):
    """Runs jobs in other processes, watched from here: a time limit and crash retries.

    Template method: subclasses say how to submit a job (:meth:`_submit`), wait for what
    happened to jobs in flight (:meth:`_poll`) and kill one (:meth:`_cancel`); this class
    keeps the slots busy, times jobs from their start, retries crashed ones and writes the
    ``timeout`` and ``failed`` records.
    """

    starts_on_submit = False
    """Whether a job's clock starts when it is submitted (else at its ``_Started`` event)."""

    def __init__(self, retries: int = 1, time_limit: float | None = None) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if time_limit is not None and not (time_limit > 0 and time_limit != float("inf")):
            raise ValueError(f"time_limit must be a finite number of seconds > 0 or None, got {time_limit}")
        self.retries = retries
        """Extra attempts of a job whose worker died, before it is recorded as ``failed``."""
        self.time_limit = time_limit
        """Seconds an evaluation may run before it is killed (``timeout``); None: no limit."""

    def _run(self, evaluator: Evaluator, jobs: list[Job]) -> Iterator[tuple[int, EvalRecord]]:
        self._bind(evaluator)
        pending = deque(jobs)
        running: dict[Hashable, tuple[Job, float | None]] = {}
        try:
            while pending or running:
                while pending and self._has_room(len(running)):
                    job = pending.popleft()
                    running[self._submit(job)] = (job, time.monotonic() if self.starts_on_submit else None)
                for event in self._poll(list(running), self._wait_time(running)):
                    job, start = running[event.handle]
                    if isinstance(event, _Started):
                        running[event.handle] = (job, time.monotonic())
                        continue
                    del running[event.handle]
                    elapsed = time.monotonic() - start if start is not None else 0.0
                    if isinstance(event, _Finished):
                        yield job.index, event.record
                        continue
                    job.attempts += 1
                    if not event.retry:
                        yield job.index, fault_record(job, "failed", event.error, elapsed)
                    elif job.attempts <= self.retries:
                        pending.appendleft(job)
                    else:
                        yield job.index, fault_record(job, "failed", f"{event.error}; gave up after {job.attempts} "
                                                      "attempts", elapsed)
                for handle, job, elapsed in self._overdue(running):
                    del running[handle]
                    self._cancel(handle)
                    yield job.index, fault_record(
                        job, "timeout", f"killed after {elapsed:.1f} s (time limit {self.time_limit:g} s)", elapsed)
        finally:
            for handle in running:
                self._cancel(handle)

    def _wait_time(self, running: Mapping[Hashable, tuple[Job, float | None]]) -> float | None:
        starts = [start for _, start in running.values() if start is not None]
        if self.time_limit is None or not starts:
            return None
        return max(min(starts) + self.time_limit - time.monotonic(), 0.0)

    def _overdue(self, running: Mapping[Hashable, tuple[Job, float | None]]) -> list[tuple[Hashable, Job, float]]:
        if self.time_limit is None:
            return []
        now = time.monotonic()
        return [(h, job, now - start) for h, (job, start) in running.items()
                if start is not None and now - start >= self.time_limit]

    @abstractmethod
    def _bind(self, evaluator: Evaluator) -> None:
        """Make ``evaluator`` the one that the next submitted jobs run on."""

    @abstractmethod
    def _has_room(self, in_flight: int) -> bool:
        """Whether another job can start now."""

    @abstractmethod
    def _submit(self, job: Job) -> Hashable:
        """Start a job; returns the handle its events will name."""

    @abstractmethod
    def _poll(self, handles: list[Hashable], timeout: float | None) -> list[_Event]:
        """Wait up to ``timeout`` seconds (None: until something happens) for events."""

    @abstractmethod
    def _cancel(self, handle: Hashable) -> None:
        """Kill a job in flight (its worker is replaced)."""


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]


def _exit_text(code: int) -> str:
    """``exit code 3``, or ``exit code -9, SIGKILL`` for a process killed by a signal."""
    return f"exit code {code}" if code >= 0 else f"exit code {code}, {signal.Signals(-code).name}"


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

    Dies with ``owner``, the process that runs the pool (:func:`die_with_parent`).
    Messages in: ``("load", token, payload)``, ``("eval", tid, actions, seed)``, ``None``.
    Out: ``("ready",)`` once started, ``("loaded", token)``, ``("error", text)`` (cannot
    rebuild the evaluator; exits), ``("start", tid)`` then ``("done", tid, record)``.
    """
    die_with_parent(owner)
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
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if workers_per_gpu < 1:
            raise ValueError(f"workers_per_gpu must be >= 1, got {workers_per_gpu}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        methods = mp.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in methods or start_method == "fork":
            valid = [m for m in methods if m != "fork"]
            raise ValueError(f"start_method {start_method!r} is not available here (fork is unsafe with torch); "
                             f"valid values are {valid}")
        gpus = torch.cuda.device_count() if device != "cpu" else 0
        if device == "cuda" and gpus == 0:
            raise ValueError("device='cuda' but no GPU is visible; use device='cpu' or 'auto'")
        if gpus:
            if workers is not None:
                raise ValueError("workers= counts CPU workers; on GPUs set workers_per_gpu (or device='cpu')")
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
                    raise ValueError(f"a worker process exited while starting (exit code {code}); a script that "
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
                    raise ValueError(f"a worker process cannot rebuild the evaluator: {msg[1]}; define the task "
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


_RAY_EVALUATORS: dict[str, Evaluator] = {}
"""The evaluator a Ray worker process has rebuilt, by object-store id (one kept)."""


def _ray_evaluate(holder: list[Any], actions: dict[str, list[int]], seed: int, device: str,
                  threads: int) -> EvalRecord:
    """The body of a Ray task; ``holder`` wraps the evaluator's ObjectRef so Ray does not fetch it."""
    import ray

    ref = holder[0]
    key = ref.hex()
    if key not in _RAY_EVALUATORS:
        _RAY_EVALUATORS.clear()
        _RAY_EVALUATORS[key] = rebuild_evaluator(ray.get(ref), device)
    with torch_threads(threads):
        return _RAY_EVALUATORS[key].evaluate(actions, seed)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("executor 'ray' needs Ray: pip install 'ma2ml[ray]'") from None
    return ray


class RayExecutor(WatchedExecutor):
    """Each evaluation a Ray task (``num_cpus=cpus_per_task``, ``num_gpus=gpus_per_task``).

    Connects with ``ray.init(address=address, **init_kwargs)`` unless Ray is already
    initialized (then the running instance is used and left running on :meth:`close`).
    ``gpus_per_task=None`` takes one GPU per task when the cluster has GPUs, else none;
    0.5 puts two evaluations on each GPU. At most ``max_in_flight`` tasks are submitted at
    once (default: the slots the cluster has), so the time limit, counted from submission,
    does not run while a task waits for resources. A task whose worker dies is retried by
    Ray (``max_retries=retries``), then recorded as ``failed``.
    """

    starts_on_submit = True

    def __init__(
        self,
        address: str | None = None,
        gpus_per_task: float | None = None,
        cpus_per_task: float = 1.0,
        max_in_flight: int | None = None,
        retries: int = 1,
        time_limit: float | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(retries=retries, time_limit=time_limit)
        if gpus_per_task is not None and gpus_per_task < 0:
            raise ValueError(f"gpus_per_task must be >= 0 (fractions allowed), got {gpus_per_task}")
        if cpus_per_task <= 0:
            raise ValueError(f"cpus_per_task must be > 0, got {cpus_per_task}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        _import_ray()
        self.address = address
        self.gpus_per_task = gpus_per_task
        self.cpus_per_task = cpus_per_task
        self.max_in_flight = max_in_flight
        self.init_kwargs = dict(init_kwargs or {})
        self._owns_ray = False
        self._remote: Any = None
        self._ref: tuple[str, Any] | None = None

    def _connect(self) -> None:
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
            self._owns_ray = True
        resources = ray.cluster_resources()
        if self.gpus_per_task is None:
            self.gpus_per_task = 1.0 if resources.get("GPU", 0) > 0 else 0.0
        if self.max_in_flight is None:
            slots = int(resources.get("CPU", 1) // self.cpus_per_task)
            if self.gpus_per_task:
                slots = min(slots, int(resources.get("GPU", 0) // self.gpus_per_task))
            if slots < 1:
                raise ValueError(f"the Ray cluster ({dict(resources)}) has no room for one task of "
                                 f"{self.cpus_per_task:g} CPUs and {self.gpus_per_task:g} GPUs")
            self.max_in_flight = slots
        self._remote = ray.remote(_ray_evaluate).options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task, max_retries=self.retries,
            retry_exceptions=False,
        )

    def _bind(self, evaluator: Evaluator) -> None:
        ray = _import_ray()
        if self._remote is None:
            self._connect()
        payload = cloudpickle.dumps(evaluator)
        token = hashlib.sha256(payload).hexdigest()
        if self._ref is None or self._ref[0] != token:
            self._ref = (token, ray.put(payload))

    def _has_room(self, in_flight: int) -> bool:
        return in_flight < self.max_in_flight

    def _submit(self, job: Job) -> Hashable:
        device = "cuda" if self.gpus_per_task else "cpu"
        threads = max(int(self.cpus_per_task), 1)
        return self._remote.remote([self._ref[1]], job.actions, job.seed, device, threads)

    def _poll(self, handles: list[Hashable], timeout: float | None) -> list[_Event]:
        ray = _import_ray()
        ready, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        events: list[_Event] = []
        for ref in ready:
            try:
                events.append(_Finished(ref, ray.get(ref)))
            except ray.exceptions.RayError as exc:
                events.append(_Crashed(ref, f"Ray task failed after {self.retries + 1} attempts at most: "
                                            f"{_one_line(exc)}", retry=False))
        return events

    def _cancel(self, handle: Hashable) -> None:
        ray = _import_ray()
        with contextlib.suppress(Exception):
            ray.cancel(handle, force=True)

    def close(self) -> None:
        if self._owns_ray:
            _import_ray().shutdown()
            self._owns_ray = False
        self._remote, self._ref = None, None


def make_executor(
    name: str,
    *,
    workers: int | None = None,
    workers_per_gpu: int = 1,
    device: str | None = None,
    ray_address: str | None = None,
    gpus_per_task: float | None = None,
    retries: int = 1,
    time_limit: float | None = None,
) -> Executor:
    """An executor by name (:data:`EXECUTORS`), for the CLI and the env's ``executor=``.

    ``workers``/``workers_per_gpu``/``device`` configure the process pool, ``ray_address``
    and ``gpus_per_task`` Ray; ``retries`` and ``time_limit`` (seconds, from outside the
    worker) apply to both. The in-process executor takes none of them.
    """
    if name == "inprocess":
        given = {"workers": workers, "ray_address": ray_address, "gpus_per_task": gpus_per_task,
                 "time_limit": time_limit}
        if workers_per_gpu != 1 or any(v is not None for v in given.values()):
            raise ValueError("the in-process executor takes no workers, Ray or time-limit settings; "
                             "use executor 'process' or 'ray'")
        return InProcessExecutor()
    if name == "process":
        if ray_address is not None or gpus_per_task is not None:
            raise ValueError("ray_address and gpus_per_task are settings of executor 'ray'")
        return ProcessPoolExecutor(workers=workers, workers_per_gpu=workers_per_gpu,
                                   device="auto" if device in (None, "auto") else str(device).split(":")[0],
                                   retries=retries, time_limit=time_limit)
    if name == "ray":
        if workers is not None or workers_per_gpu != 1:
            raise ValueError("workers and workers_per_gpu are settings of executor 'process'; "
                             "Ray takes gpus_per_task")
        return RayExecutor(address=ray_address, gpus_per_task=gpus_per_task, retries=retries,
                           time_limit=time_limit)
    raise ValueError(f"unknown executor {name!r}; valid values are {list(EXECUTORS)}")

