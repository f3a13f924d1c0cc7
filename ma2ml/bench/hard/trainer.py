"""Training a table's pipelines into raw results files (:mod:`~ma2ml.bench.results`): the
sharded build's trainer and loop, one line per finished training, flushed; a rerun skips what is done.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ma2ml.bench.hard.definitions import TableDefinition, training_seed
from ma2ml.bench.results import BUILD_THREADS, Job, ResultsFile, build_platform
from ma2ml.envs.core.records import EvalRecord
from ma2ml.training.evaluators import TrainEvaluator, train_recipe


class CurveTrainEvaluator(TrainEvaluator):
    """:class:`~ma2ml.training.evaluators.TrainEvaluator` that also scores the test split after
    every epoch (:attr:`test_curve`, of the last evaluation); the training is the same."""

    test_curve: list[float]

    def _evaluate(self, configs: Mapping[str, Any], seed: int) -> EvalRecord:
        from ma2ml.envs.core.threads import torch_threads

        self.test_curve = []
        with torch_threads(self.cpu_threads if self.device.type == "cpu" else None):
            return train_recipe(self.recipe(configs), self, seed, test_curve=self.test_curve)


class TableTrainer:
    """Trains one candidate's pipelines with :class:`CurveTrainEvaluator` on CPU with one torch
    thread (the build's setting, :data:`~ma2ml.bench.results.BUILD_THREADS`)."""

    def __init__(self, candidate: TableDefinition) -> None:
        self.candidate = candidate
        self.layout = candidate.layout()
        self.evaluator = CurveTrainEvaluator(candidate.task(), candidate.spaces(), device="cpu",
                                             cpu_threads=BUILD_THREADS)
        self.platform = build_platform()

    def train(self, job: Job) -> dict[str, Any]:
        """Train one job with its derived seed; the result line."""
        index, replicate = job
        seed = training_seed(self.candidate.name, index, replicate)
        record = self.evaluator.evaluate(self.layout.tokens_at(index), seed)
        return {"index": index, "replicate": replicate, "seed": seed, "status": record.status,
                "val_acc": record.val_acc, "test_acc": record.test_acc, "flops": record.flops,
                "params": record.params, "curve": record.curve, "test_curve": list(self.evaluator.test_curve),
                "train_seconds": record.train_seconds,
                "error": record.error, "finished_at": time.time(), "platform": self.platform}


def run_jobs(work: Iterable[tuple[TableTrainer, ResultsFile, Job]], log_every: int = 25) -> int:
    """Train each ``(trainer, file, job)`` whose job is not yet in its file, in order, appending the
    result to the file and printing progress; returns how many were trained."""
    trained, start = 0, time.perf_counter()
    for trainer, out, job in work:
        if job in out.done:
            continue
        line = trainer.train(job)
        out.append(line)
        trained += 1
        if trained % log_every == 0:
            rate = (time.perf_counter() - start) / trained
            print(f"{trained} trained ({rate:.2f} s wall each); last: {out.path.name} {job} "
                  f"val {line['val_acc']:.3f} in {line['train_seconds']:.2f} s", flush=True)
    return trained
