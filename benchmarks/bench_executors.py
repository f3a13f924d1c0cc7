"""Batch throughput of the process pool vs in-process evaluation on the ``digits`` train env.

One batch of ``--pipelines`` random pipelines of the full digits space (AUG + NAS + HPO, drawn
with ``--seed``), trained for ``--epochs`` epochs on the CPU, is evaluated three ways in the
same run:

* in-process, 1 torch thread (``InProcessExecutor(threads=1)``: the records' reference);
* in-process, torch's threads over every core this process may use (what a plain loop gets);
* a :class:`~ma2ml.runtime.pool.ProcessPoolExecutor` of ``--workers`` CPU workers (1 thread each).

Throughput is pipelines per wall-clock second of the whole batch (wall time is what
concurrency buys; other load on a shared machine slows every side). Start-up is not counted:
before its timed batch each side evaluates a warm-up batch of ``--workers`` other pipelines
(the pool: after spawning its workers and loading the evaluator in each), so every process
has loaded the data and run torch once; the per-process FLOPs cache is cleared before each
in-process timed batch so no side reuses another's work. The sides alternate for
``--repeats`` rounds and each keeps its best. The pool's records are checked to equal the
1-thread in-process records (all but ``train_seconds``). The last line is the pool's
throughput over in-process with 1 thread, the side that computes the same records (more
threads change a CPU training's floats); target >= 1.6x with 2 workers on 2 cores. The line
before it compares the pool with the multi-threaded in-process side.

    python benchmarks/bench_executors.py [--pipelines 12] [--epochs 2] [--workers 2] [--repeats 3] [--quick]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ma2ml.envs import automl_v0
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.envs.core.records import EvalRecord
from ma2ml.runtime.executors import Executor, InProcessExecutor
from ma2ml.runtime.pool import ProcessPoolExecutor, available_cpus
from ma2ml.training.evaluators import network_cost

TARGET = 1.6


def timed_batch(executor: Executor, ev: Evaluator, batch: list, seeds: list[int]) -> tuple[float, list[EvalRecord]]:
    """(wall seconds, records) of one batch."""
    network_cost.cache_clear()
    start = time.perf_counter()
    records = executor.map(ev, batch, seeds)
    return time.perf_counter() - start, records


def without_timing(records: list[EvalRecord]) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items() if k != "train_seconds"} for r in records]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=12, help="pipelines in the batch")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of each evaluation")
    parser.add_argument("--workers", type=int, default=2, help="process-pool workers")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (each side keeps its best)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pipelines and their training")
    parser.add_argument("--quick", action="store_true", help="4 pipelines of 1 epoch (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.pipelines, args.epochs = 4, 1
    if min(args.pipelines, args.epochs, args.workers, args.repeats) < 1:
        raise SystemExit("--pipelines, --epochs, --workers and --repeats must be >= 1")

    env = automl_v0.parallel_env(task="digits", epochs=args.epochs, device="cpu")
    ev = env.evaluator
    # the multi-threaded side lets torch keep the executor's thread count (cpu_threads=None)
    ev_threads = automl_v0.parallel_env(task="digits", epochs=args.epochs, device="cpu", cpu_threads=None).evaluator
    rng = np.random.default_rng(args.seed)
    warmup = [{a: s.sample(rng) for a, s in env.spaces.items()} for _ in range(args.workers)]
    batch = [{a: s.sample(rng) for a, s in env.spaces.items()} for _ in range(args.pipelines)]
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, args.pipelines)]
    cores = available_cpus()
    print(f"digits, {args.pipelines} random pipelines x {args.epochs} epochs, CPU, {cores} cores usable, "
          f"torch {torch.__version__}, load average before: {os.getloadavg()[0]:.2f}")

    sides: dict[str, Executor] = {
        "in-process, 1 thread": InProcessExecutor(threads=1),
        f"in-process, {cores} threads": InProcessExecutor(threads=cores),
        f"process pool, {args.workers} workers x 1 thread": ProcessPoolExecutor(workers=args.workers),
    }
    evaluators = {name: ev_threads if "threads" in name and "1 thread" not in name else ev for name in sides}
    best = dict.fromkeys(sides, float("inf"))
    records: dict[str, list[EvalRecord]] = {}
    for _ in range(args.repeats):
        for name, executor in sides.items():
            side_ev = evaluators[name]
            if isinstance(executor, ProcessPoolExecutor):
                executor.start(side_ev)
            executor.map(side_ev, warmup, list(range(len(warmup))))
            seconds, records[name] = timed_batch(executor, side_ev, batch, seeds)
            best[name] = min(best[name], seconds)
            executor.close()
    names = list(sides)
    same = without_timing(records[names[2]]) == without_timing(records[names[0]])

    print(f"  load average after: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    rate = {name: args.pipelines / seconds for name, seconds in best.items()}
    for name, value in rate.items():
        print(f"  {name:40s} {value:8.3f} pipelines/s")
    print(f"  statuses: {[r.status for r in records[names[2]]]}; "
          f"pool records == 1-thread in-process records: {same}")
    print(f"process pool ({args.workers} workers) vs {names[1]}: {rate[names[2]] / rate[names[1]]:.2f}x")
    print(f"process pool ({args.workers} workers) vs {names[0]}: {rate[names[2]] / rate[names[0]]:.2f}x "
          f"(target >= {TARGET}x)")


if __name__ == "__main__":
    main()
