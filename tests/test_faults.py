"""Injected faults end in a recorded status and a defined reward, and the batch/search goes on.

Faults are injected by test-only code, never by flags of the library: :class:`FaultyEvaluator`
(the synthetic game plus a ``fault`` agent whose token picks the fault, run in a worker)
and :class:`FaultModule` (a user module whose ``apply`` hook raises inside real training).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from ma2ml.envs import automl_v0
from ma2ml.bench.synthetic import SyntheticEvaluator, small_spaces
from ma2ml.runtime.pool import ProcessPoolExecutor
from ma2ml.runtime.store import EvalStore
from ma2ml.envs.spaces import HpoSpace, Recipe, TokenSpace

FAULTS = ("none", "oom", "sleep", "exit", "exit_once")
"""What the ``fault`` agent's token injects."""


class FaultyEvaluator(SyntheticEvaluator):
    """The synthetic game with a ``fault`` agent: token k injects ``FAULTS[k]``.

    ``exit_once`` kills the worker on the first attempt of a seed only (a marker file in
    ``marker_dir`` remembers it), so a retry succeeds.
    """

    def __init__(self, marker_dir: str | Path | None = None, sleep: float = 600.0) -> None:
        super().__init__(spaces={**small_spaces(), "fault": TokenSpace([len(FAULTS)], kind="fault")}, game=0)
        self.marker_dir = None if marker_dir is None else str(marker_dir)
        self.sleep = sleep

    def _evaluate(self, configs, seed):
        fault = FAULTS[configs["fault"][0]]
        if fault == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
        if fault == "sleep":
            time.sleep(self.sleep)
        if fault == "exit":
            os._exit(3)
        if fault == "exit_once":
            marker = Path(self.marker_dir) / f"attempted-{seed}"
            if not marker.exists():
                marker.touch()
                os._exit(4)
        return super()._evaluate(configs, seed)


def faulty_action(fault: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    spaces = FaultyEvaluator().spaces
    return {**{a: s.sample(rng) for a, s in spaces.items()}, "fault": np.array([FAULTS.index(fault)])}


ALIVE_AT_EMPTY_CACHE: list[bool] = []
BLOBS: list[weakref.ref] = []


class FaultModule(TokenSpace):
    """A user module whose ``apply`` hook raises CUDA out-of-memory (token 1) in training."""

    def __init__(self) -> None:
        super().__init__([2], kind="fault")

    def apply(self, config: tuple[int, ...], recipe: Recipe) -> None:
        if config[0] == 1:
            blob = torch.zeros(4096)  # held only by this frame, i.e. by the exception's traceback
            BLOBS.append(weakref.ref(blob))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")


def test_injected_oom_in_training_is_recorded_after_freeing_its_tensors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: ALIVE_AT_EMPTY_CACHE.append(BLOBS[-1]() is not None))
    env = automl_v0.parallel_env(task="digits", agents=["hpo", "fault"], spaces={"fault": FaultModule()}, epochs=1)
    env.reset(seed=0)
    actions = {"hpo": env.action_space("hpo").sample(), "fault": np.array([1])}
    _, rewards, _, _, infos = env.step(actions)
    assert infos["fault"]["status"] == "oom" and "out of memory" in infos["fault"]["error"]
    assert rewards == {"hpo": 0.0, "fault": 0.0}
    assert ALIVE_AT_EMPTY_CACHE == [False]  # the cache is emptied once the failed training's tensors are gone


@pytest.mark.slow
def test_diverging_pipeline_is_recorded_with_reward_zero():
    hpo = HpoSpace(levels={"lr": (0.05, 1e8), "momentum": (0.9,), "batch_size": (64,)})
    env = automl_v0.parallel_env(task="digits", agents=["nas", "hpo"], spaces={"hpo": hpo}, epochs=1, train_seed=0)
    env.reset(seed=0)
    records = env.evaluate_batch([{"nas": env.action_space("nas").sample(), "hpo": np.array([k])} for k in (1, 0)])
    assert [r.status for r in records] == ["diverged", "ok"]
    assert "non-finite training loss" in records[0].error and records[0].val_acc == 0.0
    assert env.reward(records[0]) == 0.0 and env.reward(records[1]) > 0.0


@pytest.mark.slow
def test_pool_faults_end_in_statuses_and_workers_are_replaced(tmp_path):
    rng = np.random.default_rng(0)
    kinds = ["none", "oom", "sleep", "exit", "exit_once", "none"]
    batch = [faulty_action(k, rng) for k in kinds]
    ev = FaultyEvaluator(marker_dir=tmp_path)
    with ProcessPoolExecutor(workers=2, retries=1, time_limit=2.0) as pool:
        start = time.monotonic()
        records = pool.map(ev, batch, list(range(len(batch))))
        assert time.monotonic() - start < 120
        assert [r.status for r in records] == ["ok", "oom", "timeout", "failed", "ok", "ok"]
        assert "time limit 2 s" in records[2].error
        assert "exit code 3" in records[3].error and "gave up after 2 attempts" in records[3].error
        assert (tmp_path / "attempted-4").exists()  # exit_once died once, then its retry succeeded
        assert all(r.seed == i and r.pipeline == ev.pipeline_json(a) for i, (r, a) in enumerate(zip(records, batch)))
        assert len(mp.active_children()) <= 2  # the killed workers are gone, not leaked
        again = pool.map(ev, batch[:1], [0])
        assert again[0].status == "ok" and again[0].val_acc == records[0].val_acc


@pytest.mark.slow
def test_search_over_faulty_pipelines_completes_with_defined_rewards(tmp_path):
    env = automl_v0.parallel_env(evaluator=FaultyEvaluator(marker_dir=tmp_path, sleep=600.0),
                                 executor=ProcessPoolExecutor(workers=2, retries=0, time_limit=2.0),
                                 store=str(tmp_path / "search.sqlite"), run_id="faulty")
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    best, told = 0.0, 0
    plan = [["none", "oom", "exit", "none"], ["sleep", "none", "exit_once", "oom"], ["none", "none", "none", "exit"]]
    for kinds in plan:  # ask -> evaluate -> reward -> tell, as a learner's loop does
        records = env.evaluate_batch([faulty_action(k, rng) for k in kinds])
        rewards = [env.reward(r) for r in records]
        assert all(np.isfinite(rewards))
        assert all(x == 0.0 for x, r in zip(rewards, records) if r.status != "ok")
        best, told = max(best, *rewards), told + len(records)
    env.evaluator.executor.close()
    assert told == 12 and best > 0.0
    store = EvalStore(tmp_path / "search.sqlite")
    statuses = [r.status for r in store.evaluations("faulty")]
    assert statuses == ["ok", "oom", "failed", "ok", "timeout", "ok", "failed", "oom", "ok", "ok", "ok", "failed"]
