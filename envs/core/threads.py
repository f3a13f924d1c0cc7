"""Torch's CPU thread policy, in one place.

torch runs CPU operators on an intra-op thread pool sized to the machine's cores. For the
work ma2ml does on a CPU that pool mostly costs: the learners' networks (LSTM controllers,
the critic) and the proxy trainings work on small tensors, and on a busy machine the pool's
threads spin-wait for cores other jobs hold (measured: `ma2ml search` on the table env
took 332 s with torch's default against 61 s with one thread, identical results). The policy:

* **learners** run their own torch work (:meth:`ma2ml.agents.base.Learner.ask`, ``tell``
  and ``learn``) under :data:`LEARNER_THREADS` = 1 thread, whatever the caller's setting;
  the table env does no torch work at all;
* **a CPU training** runs under its evaluator's ``cpu_threads`` (the env's argument, default
  1; ``None`` keeps the caller's setting); pool and Ray workers use the same count, which
  is what makes their records equal to in-process ones;
* **the ``ma2ml`` command** sets the whole process to 1 thread at start
  (:func:`set_process_threads`), so every sub-command, ``compare``'s worker processes and
  ``bench build``'s included, runs by the two rules above.

Everything that changes torch's thread count goes through :func:`torch_threads`, which puts
the caller's setting back afterwards.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ma2ml.envs.core.errors import UserError

LEARNER_THREADS = 1
"""torch threads of a learner's own computations (policies, critics)."""
DEFAULT_CPU_THREADS = 1
"""torch threads of a CPU training unless the env's ``cpu_threads`` says otherwise."""


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block with ``threads`` torch threads, then restore the caller's (``None``: leave it alone)."""
    if threads is None or threads == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def set_process_threads(threads: int = DEFAULT_CPU_THREADS) -> None:
    """Set this process's torch thread count (the CLI's policy, see the module docstring)."""
    if threads < 1:
        raise UserError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
