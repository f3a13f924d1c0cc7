"""The Ray executor (:class:`RayExecutor`): each evaluation a Ray task.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Hashable, Mapping
from typing import Any

import cloudpickle

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.envs.core.records import EvalRecord
from ma2ml.envs.core.threads import torch_threads
from ma2ml.runtime.executors import Job, WatchedExecutor, _Crashed, _Event, _Finished, _one_line
from ma2ml.runtime.pool import rebuild_evaluator

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
        raise UserError("executor 'ray' needs Ray: pip install 'ma2ml[ray]'") from None
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
            raise UserError(f"gpus_per_task must be >= 0 (fractions allowed), got {gpus_per_task}")
        if cpus_per_task <= 0:
            raise UserError(f"cpus_per_task must be > 0, got {cpus_per_task}")
        if max_in_flight is not None and max_in_flight < 1:
            raise UserError(f"max_in_flight must be >= 1, got {max_in_flight}")
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
                raise UserError(f"the Ray cluster ({dict(resources)}) has no room for one task of "
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
