"""The evaluator base: the env calls an :class:`Evaluator` to score joint actions; it never
trains inline. Subclasses implement ``_evaluate``; faults end in a record's status, never
an exception. :func:`resolve_device` is the one check of a ``device`` argument.
"""
from __future__ import annotations

from ma2ml.envs.core.errors import UserError

import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ma2ml.envs.core.records import Actions, EvalRecord, checked_batch, checked_seed, checked_tokens, decode_actions

if TYPE_CHECKING:
    import numpy as np

    from ma2ml.runtime.executors import Executor
    from ma2ml.envs.spaces import ModuleSpace
    from ma2ml.envs.tasks import Task


class Evaluator(ABC):
    """Scores joint actions. Subclasses implement :meth:`_evaluate` (may raise)."""

    executor: Executor | None = None
    """Where :meth:`evaluate_batch` runs (:mod:`ma2ml.runtime.executors`); None: here, in order.
    Not pickled: a worker's copy of the evaluator evaluates in place."""

    def __init__(self, task: Task, spaces: Mapping[str, ModuleSpace]) -> None:
        self.task = task
        self.spaces = dict(spaces)

    def settings(self) -> dict[str, Any]:
        """What, besides the pipeline and seed, determines a record (the store's cache key)."""
        return {"evaluator": type(self).__name__, "task": self.task.name}

    def legacy_settings(self) -> dict[str, Any] | None:
        """Earlier :meth:`settings` under which stored records are still this evaluator's (a key that gained
        a field that did not change the records); a run recorded under them resumes. None: none."""
        return None

    def pipeline_json(self, actions: Actions) -> dict[str, Any]:
        configs = decode_actions(self.spaces, actions)
        return {agent: self.spaces[agent].to_json(cfg) for agent, cfg in configs.items()}

    def evaluate(self, actions: Actions, seed: int) -> EvalRecord:
        """One evaluation; bad input (a joint action, a seed) raises ``UserError``, faults end in a status."""
        configs = decode_actions(self.spaces, actions)
        seed = checked_seed(seed)
        pipeline = {agent: self.spaces[agent].to_json(cfg) for agent, cfg in configs.items()}
        start = time.perf_counter()
        try:
            record = self._evaluate(configs, seed)
        except torch.cuda.OutOfMemoryError as exc:
            record = EvalRecord(status="oom", error=str(exc).splitlines()[0])
        except Exception as exc:  # a fault of one pipeline must not stop a search
            record = EvalRecord(status="failed", error="".join(traceback.format_exception_only(exc)).strip())
        if record.status == "oom":  # here, not in the handler, whose traceback still holds the tensors
            torch.cuda.empty_cache()
        record.seed = seed
        record.pipeline = pipeline
        if not record.train_seconds:
            record.train_seconds = time.perf_counter() - start
        return record

    def evaluate_batch(self, batch: Sequence[Actions], seeds: Sequence[int]) -> list[EvalRecord]:
        """Several evaluations, in batch order; concurrent when :attr:`executor` is set."""
        out: list[EvalRecord | None] = [None] * len(batch)
        for i, record in self.iter_batch(batch, seeds):
            out[i] = record
        return out  # type: ignore[return-value]  (every position is filled)

    def iter_batch(self, batch: Sequence[Actions], seeds: Sequence[int],
                   checked: bool = False) -> Iterator[tuple[int, EvalRecord]]:
        """``(position, record)`` as each evaluation finishes (what a store writes one by one).

        The whole batch is validated first: bad input raises ``ValueError`` before anything runs
        (``checked=True``: the caller validated it with :func:`~ma2ml.envs.core.records.checked_tokens`,
        as the evaluation store's run log does). Without an executor the evaluations run here, in batch order (what
        :class:`~ma2ml.runtime.executors.InProcessExecutor` does).
        """
        batch, seeds = checked_batch(batch, seeds)
        if self.executor is not None:
            return self.executor.run(self, batch, seeds, checked=checked)
        for i, actions in enumerate(batch if not checked else ()):
            try:
                checked_tokens(self.spaces, actions)
            except ValueError as exc:
                raise UserError(f"batch item {i}: {exc}") from None
        return ((i, self.evaluate(actions, int(seed))) for i, (actions, seed) in enumerate(zip(batch, seeds)))

    def reference(self, reward_fn: Any) -> tuple[float, float] | None:
        """What the evaluator declares about its best rewards: (optimal reward, top-1% reward threshold)
        under ``reward_fn`` when it knows its whole space (a benchmark table, a synthetic game); None (the
        default): unknown, as for real training."""
        return None

    def new_run(self) -> None:
        """Forget what this run answered (the env's ``reset(seed=...)`` starts a new run); the default has
        nothing to forget."""

    def replay(self, actions: Actions, record: EvalRecord) -> None:
        """A stored evaluation of ``actions`` is answered again (a resumed run): an evaluator whose answers
        depend on what it answered before (a table's draws among replicates) catches up; the default
        does nothing."""

    def seed_noise(self) -> bool:
        """Whether evaluating a pipeline again can answer differently (another training seed): a table that
        draws among stored replicates, a noisy synthetic game. False (the default) declares repeats
        redundant; real training is noisy but declares no truth to score against, so it keeps the default."""
        return False

    def truth(self, reward_fn: Any) -> np.ndarray | None:
        """The declared ground truth: every pipeline's reward under ``reward_fn``, ``(N,)`` in the order of
        ``JointLayout.of_spaces(self.spaces)`` (a benchmark table's seed-averaged rewards); None (the
        default): unknown. ``ma2ml compare`` scores each run's recommended pipeline on it."""
        return None

    def use_device(self, device: torch.device) -> None:
        """Move evaluations to ``device`` (an executor's worker pinned to one GPU calls it)."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("executor", None)
        return state

    @abstractmethod
    def data_facts(self) -> tuple[tuple[int, int, int], int, int]:
        """(image shape (C, H, W), train-split size, classes): the task descriptor's inputs."""

    @abstractmethod
    def _evaluate(self, configs: Mapping[str, Any], seed: int) -> EvalRecord:
        """Score decoded configs (agent -> config)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device of a ``device`` argument; one ``ValueError`` naming it and the valid values.

    None or ``"auto"``: CUDA when a GPU is visible, else the CPU. ``"cpu"``; ``"cuda"`` (the
    current GPU) and ``"cuda:N"`` with N < ``torch.cuda.device_count()``, only when a GPU is
    visible. A ``torch.device`` of these works too. Constructors that take a ``device`` (the
    env, :class:`TrainEvaluator`) check it here, before anything trains.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    valid = (f"valid values are None, 'auto', 'cpu', 'cuda' and 'cuda:N' with N < {gpus}" if gpus
             else "valid values are None, 'auto' and 'cpu' (no GPU is visible for 'cuda' or 'cuda:N')")
    try:
        resolved = torch.device(device) if isinstance(device, (str, torch.device)) else None
    except RuntimeError:  # torch's "Expected one of cpu, cuda, ... device type at start of device string"
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise UserError(f"unknown device {device!r}; {valid}")
    if resolved.type == "cuda" and not gpus:
        raise UserError(f"device {device!r} needs a GPU, but no GPU is visible; "
                         f"valid values are None, 'auto' and 'cpu'")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= gpus:
        raise UserError(f"device {device!r} is not a visible GPU; {valid}")
    return resolved
