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

import signal
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.envs.core.records import Actions, EvalRecord, checked_tokens
from ma2ml.envs.core.threads import torch_threads

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
    attempts: int = 0
    """Starts that ended with the worker dead."""


def prepare_jobs(evaluator: Evaluator, batch: Sequence[Actions], seeds: Sequence[int],
                 checked: bool = False) -> list[Job]:
    """Validate a whole batch before anything runs; one ``ValueError`` naming the bad item.

    ``checked=True``: the caller (the evaluation store's run log) has validated every item with
    :func:`~ma2ml.envs.core.records.checked_tokens` already, and the tokens are taken as they are.
    """
    if len(batch) != len(seeds):
        raise UserError(f"a batch of {len(batch)} joint actions needs as many seeds, got {len(seeds)}")
    jobs = []
    for i, (actions, seed) in enumerate(zip(batch, seeds)):
        try:
            tokens = ({a: [int(t) for t in actions[a]] for a in evaluator.spaces} if checked
                      else checked_tokens(evaluator.spaces, actions))
        except ValueError as exc:
            raise UserError(f"batch item {i}: {exc}") from None
        jobs.append(Job(i, tokens, int(seed)))
    return jobs


def fault_record(evaluator: Evaluator, job: Job, status: str, error: str, seconds: float) -> EvalRecord:
    """The record of an evaluation that the executor ended (the evaluator never returned)."""
    return EvalRecord(status=status, error=error, seed=job.seed, pipeline=evaluator.pipeline_json(job.actions),
                      train_seconds=seconds)


class Executor(ABC):
    """Runs the evaluations of a batch (see the module docstring). Close it when done."""

    def run(self, evaluator: Evaluator, batch: Sequence[Actions], seeds: Sequence[int],
            checked: bool = False) -> Iterator[tuple[int, EvalRecord]]:
        """``(position, record)`` pairs as the evaluations finish, every position once.

        The batch is validated first (unless ``checked``, see :func:`prepare_jobs`): bad input raises
        ``ValueError`` before anything runs.
        """
        return self._run(evaluator, prepare_jobs(evaluator, batch, seeds, checked))

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
            raise UserError(f"threads must be >= 1 or None, got {threads}")
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
            raise UserError(f"retries must be >= 0, got {retries}")
        if time_limit is not None and not (time_limit > 0 and time_limit != float("inf")):
            raise UserError(f"time_limit must be a finite number of seconds > 0 or None, got {time_limit}")
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
                        yield job.index, fault_record(evaluator, job, "failed", event.error, elapsed)
                    elif job.attempts <= self.retries:
                        pending.appendleft(job)
                    else:
                        yield job.index, fault_record(evaluator, job, "failed", f"{event.error}; gave up after "
                                                      f"{job.attempts} attempts", elapsed)
                for handle, job, elapsed in self._overdue(running):
                    del running[handle]
                    self._cancel(handle)
                    yield job.index, fault_record(
                        evaluator, job, "timeout", f"killed after {elapsed:.1f} s (time limit {self.time_limit:g} s)", elapsed)
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
    from ma2ml.runtime.pool import ProcessPoolExecutor
    from ma2ml.runtime.ray import RayExecutor

    if name == "inprocess":
        given = {"workers": workers, "ray_address": ray_address, "gpus_per_task": gpus_per_task,
                 "time_limit": time_limit}
        if workers_per_gpu != 1 or any(v is not None for v in given.values()):
            raise UserError("the in-process executor takes no workers, Ray or time-limit settings; "
                             "use executor 'process' or 'ray'")
        return InProcessExecutor()
    if name == "process":
        if ray_address is not None or gpus_per_task is not None:
            raise UserError("ray_address and gpus_per_task are settings of executor 'ray'")
        return ProcessPoolExecutor(workers=workers, workers_per_gpu=workers_per_gpu,
                                   device="auto" if device in (None, "auto") else str(device).split(":")[0],
                                   retries=retries, time_limit=time_limit)
    if name == "ray":
        if workers is not None or workers_per_gpu != 1:
            raise UserError("workers and workers_per_gpu are settings of executor 'process'; "
                             "Ray takes gpus_per_task")
        return RayExecutor(address=ray_address, gpus_per_task=gpus_per_task, retries=retries,
                           time_limit=time_limit)
    raise UserError(f"unknown executor {name!r}; valid values are {list(EXECUTORS)}")
