"""Executors: the process pool and Ray give the in-process records; arguments; user code in workers."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import test_faults
from test_faults import FaultyEvaluator, faulty_action

from ma2ml.envs import automl_v0
from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.runtime.executors import InProcessExecutor, make_executor
from ma2ml.runtime.pool import ProcessPoolExecutor
from ma2ml.runtime.ray import RayExecutor


def without_timing(records) -> list[dict]:
    out = []
    for r in records:
        d = r.to_dict()
        d.pop("train_seconds")
        out.append(d)
    return out


def digits_batch(n: int = 4):
    """The digits train env's evaluator (1 epoch) and a seeded batch of its pipelines."""
    env = automl_v0.parallel_env(task="digits", epochs=1, device="cpu")
    rng = np.random.default_rng(7)
    batch = [{a: s.sample(rng) for a, s in env.spaces.items()} for _ in range(n)]
    return env.evaluator, batch, [int(s) for s in rng.integers(0, 2**31 - 1, n)]


class LoadFault(SyntheticEvaluator):
    """The synthetic game, whose data load in a worker is SIGKILLed (as by the OOM killer) the first
    ``kills`` times, or raises ``FileNotFoundError(message)``. Each load leaves a file ``load-<pid>``
    in ``marker_dir``; each kill is claimed with an exclusively created ``kill-<k>`` file, so
    workers loading at the same time never take the same kill twice."""

    def __init__(self, marker_dir: Path, kills: int = 0, message: str | None = None) -> None:
        super().__init__(game=0)
        self.marker_dir, self.kills, self.message = str(marker_dir), kills, message
        self.owner = os.getpid()

    def data_facts(self) -> tuple[tuple[int, int, int], int, int]:
        if os.getpid() != self.owner:
            (Path(self.marker_dir) / f"load-{os.getpid()}").touch()
            if self.message is not None:
                raise FileNotFoundError(self.message)
            for k in range(self.kills):
                try:
                    os.close(os.open(Path(self.marker_dir) / f"kill-{k}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    continue
                os.kill(os.getpid(), signal.SIGKILL)
        return super().data_facts()


def loads(marker_dir: Path) -> int:
    """Data loads the workers of a :class:`LoadFault` have started."""
    return len(list(marker_dir.glob("load-*")))


def synthetic_batch(ev, n: int) -> list:
    rng = np.random.default_rng(0)
    return [{k: s.sample(rng) for k, s in ev.spaces.items()} for _ in range(n)]


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(workers=2) as executor:
        yield executor


@pytest.mark.slow
def test_pool_matches_inprocess_on_digits(pool):
    ev, batch, seeds = digits_batch()
    reference = InProcessExecutor(threads=1).map(ev, batch, seeds)
    assert all(r.status == "ok" for r in reference) and len({r.val_acc for r in reference}) > 1
    order = [i for i, _ in pool.run(ev, batch, seeds)]
    assert sorted(order) == list(range(len(batch)))
    ev.executor = pool
    assert without_timing(ev.evaluate_batch(batch, seeds)) == without_timing(reference)


def test_pool_follows_the_evaluator_it_is_given(pool):
    a, b = SyntheticEvaluator(game=0, noise=0.1), SyntheticEvaluator(game=1, noise=0.1)
    rng = np.random.default_rng(0)
    batch = [{k: s.sample(rng) for k, s in a.spaces.items()} for _ in range(5)]
    seeds = list(range(5))
    for ev in (a, b, a):
        assert without_timing(pool.map(ev, batch, seeds)) == without_timing(InProcessExecutor().map(ev, batch, seeds))
    assert pool.map(a, [], []) == []


def test_bad_batch_raises_before_any_worker_starts():
    ev = SyntheticEvaluator(game=0)
    rng = np.random.default_rng(0)
    batch = [{k: s.sample(rng) for k, s in ev.spaces.items()} for _ in range(3)]
    batch[1] = {"aug": batch[1]["aug"], "nas": batch[1]["nas"]}
    children = len(mp.active_children())
    executor = ProcessPoolExecutor(workers=2)
    with pytest.raises(ValueError, match=r"batch item 1: actions name agents \['aug', 'nas'\]"):
        executor.map(ev, batch, [0, 1, 2])
    with pytest.raises(ValueError, match="needs as many seeds"):
        executor.map(ev, batch[:1], [0, 1])
    assert len(mp.active_children()) == children
    executor.close()


def test_worker_killed_while_loading_is_retried_then_failed(tmp_path):
    ev = LoadFault(tmp_path, kills=2)
    with ProcessPoolExecutor(workers=1, retries=1) as executor:
        records = executor.map(ev, synthetic_batch(ev, 2), [0, 1])
    assert [r.status for r in records] == ["failed", "ok"]
    assert "died (exit code -9, SIGKILL); gave up after 2 attempts" in records[0].error
    assert loads(tmp_path) == 3  # two loads killed, then one for the second job


def test_start_waits_for_every_load_and_a_killed_one_is_replaced(tmp_path):
    ev = LoadFault(tmp_path, kills=1)
    with ProcessPoolExecutor(workers=2) as executor:
        executor.start(ev)
        assert loads(tmp_path) >= 2 and len(list(tmp_path.glob("kill-*"))) == 1
        assert [r.status for r in executor.map(ev, synthetic_batch(ev, 2), [0, 1])] == ["ok", "ok"]


def test_evaluator_that_cannot_be_rebuilt_is_a_clear_error(tmp_path):
    ev = LoadFault(tmp_path, message="no data in /nowhere")
    with ProcessPoolExecutor(workers=1) as executor, \
            pytest.raises(ValueError, match="cannot rebuild the evaluator: FileNotFoundError: no data in /nowhere"):
        executor.map(ev, synthetic_batch(ev, 1), [0])


def test_close_kills_a_busy_worker_at_once():
    rng = np.random.default_rng(0)
    children = len(mp.active_children())
    executor = ProcessPoolExecutor(workers=2)
    jobs = executor.run(FaultyEvaluator(sleep=600.0), [faulty_action("none", rng), faulty_action("sleep", rng)], [0, 1])
    assert next(jobs)[0] == 0
    start = time.monotonic()
    executor.close()
    assert time.monotonic() - start < 30  # at once: the busy worker sleeps 600 s (slack for a loaded machine)
    assert len(mp.active_children()) == children
    jobs.close()


@pytest.mark.parametrize("make, match", [
    (lambda: make_executor("threads"), r"unknown executor 'threads'; valid values are \['inprocess', 'process', 'ray'\]"),
    (lambda: make_executor("inprocess", time_limit=5), "in-process executor takes no"),
    (lambda: make_executor("process", ray_address="auto"), "settings of executor 'ray'"),
    (lambda: make_executor("ray", workers=2), "settings of executor 'process'"),
    (lambda: ProcessPoolExecutor(workers=0), "workers must be >= 1"),
    (lambda: ProcessPoolExecutor(workers_per_gpu=0), "workers_per_gpu must be >= 1"),
    (lambda: ProcessPoolExecutor(device="tpu"), "device must be 'auto', 'cpu' or 'cuda'"),
    (lambda: ProcessPoolExecutor(start_method="fork"), "fork is unsafe with torch"),
    (lambda: ProcessPoolExecutor(retries=-1), "retries must be >= 0"),
    (lambda: ProcessPoolExecutor(time_limit=0), "time_limit must be a finite number of seconds > 0"),
    (lambda: RayExecutor(gpus_per_task=-0.5), "gpus_per_task must be >= 0"),
    (lambda: InProcessExecutor(threads=0), "threads must be >= 1"),
])
def test_bad_executor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_cuda_device_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(ValueError, match="no GPU is visible"):
        ProcessPoolExecutor(device="cuda")
    assert ProcessPoolExecutor(device="auto", workers=3).devices == ["cpu"] * 3


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a GPU")
def test_one_worker_per_gpu_slot():
    import torch

    gpus = torch.cuda.device_count()
    executor = ProcessPoolExecutor(workers_per_gpu=2)
    assert executor.devices == [f"cuda:{g}" for _ in range(2) for g in range(gpus)]
    with pytest.raises(ValueError, match="workers= counts CPU workers"):
        ProcessPoolExecutor(workers=2)


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ValueError, match=r"pip install 'ma2ml\[ray\]'"):
        RayExecutor()


def test_env_builds_and_closes_its_executor():
    env = automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), executor="process", workers=2, time_limit=30)
    executor = env.evaluator.executor
    assert isinstance(executor, ProcessPoolExecutor) and executor.workers == 2 and executor.time_limit == 30
    env.close()
    with pytest.raises(ValueError, match="workers=2 needs executor='process'"):
        automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), workers=2)
    with pytest.raises(ValueError, match="unknown executor 'gpu'"):
        automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), executor="gpu")


SCRIPT = """
from dataclasses import replace

import numpy as np
import torch

from ma2ml.envs.tasks.data import load_digits
from ma2ml.training.evaluators import TrainEvaluator
from ma2ml.envs.core.budget import Budget
from ma2ml.runtime.executors import InProcessExecutor
from ma2ml.runtime.pool import ProcessPoolExecutor
from ma2ml.envs.spaces import HpoSpace, TokenSpace
from ma2ml.envs.tasks import DEFAULT_GENOTYPE, Task


class Smoothing(TokenSpace):
    \"\"\"A user module defined in the script: picks the label smoothing.\"\"\"

    def apply(self, config, recipe):
        recipe.hparams = replace(recipe.hparams, label_smoothing=(0.0, 0.2)[config[0]])


TASK = Task(name="my-digits", description="digits, defined in a user script", load=lambda data_dir: load_digits(),
            spaces={"hpo": HpoSpace, "smooth": lambda: Smoothing([2], kind="smooth")},
            default_architecture=DEFAULT_GENOTYPE,
            budget=Budget(epochs=1, channels=8, stages=2, crop_padding=0, flip=False))


def main():
    torch.set_num_threads(1)
    ev = TrainEvaluator(TASK, TASK.make_spaces(), device="cpu")
    batch = [{"hpo": np.array([3, 1, 2, 1, 0, 0]), "smooth": np.array([k])} for k in (0, 1)]
    reference = InProcessExecutor(threads=1).map(ev, batch, [1, 2])
    with ProcessPoolExecutor(workers=2) as pool:
        records = pool.map(ev, batch, [1, 2])
    same = all(a.val_acc == b.val_acc and a.curve == b.curve for a, b in zip(reference, records))
    print("STATUSES", [r.status for r in records], "SAME" if same else "DIFFERENT")

{call}
"""


@pytest.mark.slow
@pytest.mark.parametrize("guarded", [True, False])
def test_task_defined_in_a_user_script(tmp_path, guarded):
    script = tmp_path / "user_search.py"
    call = "if __name__ == '__main__':\n    main()" if guarded else "main()"
    script.write_text(textwrap.dedent(SCRIPT).replace("{call}", call))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    if guarded:
        assert done.returncode == 0, done.stderr
        assert "STATUSES ['ok', 'ok'] SAME" in done.stdout
    else:
        assert done.returncode != 0
        assert "UserError: a worker process exited while starting" in done.stderr


# -- Ray: one local instance for the module ----------------------------------------------------------
@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    cloudpickle.register_pickle_by_value(test_faults)  # Ray workers cannot import the tests folder
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(test_faults)


@pytest.mark.slow
def test_ray_matches_inprocess_on_digits(ray_session):
    ev, batch, seeds = digits_batch()
    reference = InProcessExecutor(threads=1).map(ev, batch, seeds)
    with RayExecutor() as executor:
        assert executor.max_in_flight is None
        records = executor.map(ev, batch, seeds)
        assert executor.max_in_flight == 2 and executor.gpus_per_task == 0.0
    assert without_timing(records) == without_timing(reference)
    assert ray_session.is_initialized()  # an instance it did not start is left running


@pytest.mark.slow
def test_ray_faults(ray_session, tmp_path):
    rng = np.random.default_rng(0)
    kinds = ["none", "exit", "sleep", "oom"]
    batch = [faulty_action(k, rng) for k in kinds]
    with RayExecutor(retries=1, time_limit=20.0) as executor:
        records = executor.map(FaultyEvaluator(marker_dir=tmp_path), batch, [0, 1, 2, 3])
    assert [r.status for r in records] == ["ok", "failed", "timeout", "oom"]
    assert "Ray task failed" in records[1].error and "time limit 20 s" in records[2].error
