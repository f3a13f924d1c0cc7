"""The ``digits`` table's builder (its frozen recipe): every pipeline trained once and a fixed
random 10 % three times, in worker processes, into one resumable raw results file
(:func:`run_build`, :mod:`~ma2ml.bench.results`), then the package file (:func:`compact`).

The table it builds is frozen (``DIGITS_BENCH.sha256``); this module is how anyone can rebuild
it (``ma2ml bench build``). Every table since is built by :mod:`~ma2ml.bench.hard.sharded`.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.bench.results import (BUILD_THREADS, build_platform, check_table_path, check_writable, numbered_results,
                                 open_raw, raw_fingerprint, read_raw)
from ma2ml.bench.space import (BENCH_BUDGET, BENCH_FLOPS_CONSTRAINT, EXTRA_SEEDS, SUBSET_SEED, TASK_NAME,
                               bench_spaces, bench_task, extra_subset, joint_nvec, pipeline_seed,
                               pipeline_tokens, space_fingerprint)
from ma2ml.bench.table import TABLE_PATH, values_problem
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.files import atomic_write
from ma2ml.envs.core.records import STATUSES


def build_jobs(n_pipelines: int) -> list[tuple[int, int]]:
    """Every ``(index, replicate)`` to train, in the (seeded, shuffled) build order."""
    jobs = [(i, 0) for i in range(n_pipelines)]
    jobs += [(int(i), r) for i in extra_subset(n_pipelines) for r in range(1, EXTRA_SEEDS + 1)]
    order = np.random.default_rng(SUBSET_SEED + 1).permutation(len(jobs))
    return [jobs[k] for k in order]


_WORKER: dict[str, Any] = {}


def _init_worker(parent_pid: int) -> None:
    import torch

    from ma2ml.runtime.pool import die_with_parent
    from ma2ml.training.evaluators import TrainEvaluator

    die_with_parent(parent_pid)  # a killed build takes its workers along
    torch.set_num_threads(BUILD_THREADS)
    spaces = bench_spaces()
    _WORKER["spaces"] = spaces
    _WORKER["evaluator"] = TrainEvaluator(bench_task(), spaces, device="cpu")
    _WORKER["platform"] = build_platform()


def _train_job(job: tuple[int, int]) -> dict[str, Any]:
    index, replicate = job
    seed = pipeline_seed(index, replicate)
    record = _WORKER["evaluator"].evaluate(pipeline_tokens(_WORKER["spaces"], index), seed)
    return {
        "index": index, "replicate": replicate, "seed": seed, "status": record.status,
        "val_acc": record.val_acc, "test_acc": record.test_acc, "flops": record.flops, "params": record.params,
        "curve": record.curve, "train_seconds": record.train_seconds, "error": record.error,
        "finished_at": time.time(), "platform": _WORKER["platform"],
    }


def run_build(raw: str | Path, workers: int = 2, limit: int | None = None, progress: bool = True) -> int:
    """Train every missing table entry into the raw JSON-lines file; returns how many are done.

    Resumable: finished ``(index, replicate)`` pairs in ``raw`` are skipped. ``limit``
    stops after that many jobs of the build order (a slice, for trying the build out).
    Bad arguments are refused before anything is created. Each result records the worker's
    :func:`build_platform`.
    """
    from tqdm import tqdm

    if not (isinstance(workers, (int, np.integer)) and workers >= 1):
        raise UserError(f"workers must be an integer >= 1, got {workers!r}")
    if limit is not None and not (isinstance(limit, (int, np.integer)) and limit >= 1):
        raise UserError(f"limit must be an integer >= 1 (or None for every job), got {limit!r}")
    path = check_writable(raw, "raw build file")
    spaces = bench_spaces()
    n = int(np.prod(joint_nvec(spaces)))
    out = open_raw(path, space_fingerprint(spaces, BENCH_BUDGET))
    jobs = build_jobs(n)[:limit]
    done = {(r["index"], r["replicate"]) for r in read_raw(path)}
    todo = [j for j in jobs if j not in done]
    with out, multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker,
                                                          initargs=(os.getpid(),)) as pool, \
            tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not progress, unit="eval",
                 smoothing=0.05, desc="digits-bench") as bar:
        for result in pool.imap_unordered(_train_job, todo):
            out.write(json.dumps(result) + "\n")
            out.flush()
            bar.update()
    return len(jobs)


def _place(result: Mapping[str, Any], n: int, reps: int) -> tuple[int, int]:
    """(pipeline, replicate) of a raw result, checked: integers in ``0..n-1`` and ``0..reps-1``."""
    i, k = result["index"], result["replicate"]
    for name, value, size in (("index", i, n), ("replicate", k, reps)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            raise ValueError(f"{name!r} is {value!r}, expected an integer in 0..{size - 1}")
    return i, k


def compact(raw: str | Path, out: str | Path = TABLE_PATH) -> Path:
    """Write the package table (compressed ``.npz``) from a raw build file; missing entries stay NaN.

    The metadata's ``build_platform`` is the :func:`build_platform` the results were trained
    on, or ``None`` when they came from several platforms or from workers that did not
    record one. Bad paths are refused before anything is written.
    """
    path = check_table_path(out, raw)
    raw = Path(raw)
    if raw.is_dir():
        raise UserError(f"raw build file {raw} is a folder; give the .jsonl file of a build")
    if not raw.exists():
        raise FileNotFoundError(f"no raw build file at {raw}; run `ma2ml bench build` first")
    spaces = bench_spaces()
    if raw_fingerprint(raw) not in (None, json.loads(json.dumps(space_fingerprint(spaces, BENCH_BUDGET)))):
        raise UserError(f"{raw} was built for another space or budget than {TASK_NAME!r}")
    n, reps, epochs = int(np.prod(joint_nvec(spaces))), 1 + EXTRA_SEEDS, BENCH_BUDGET.epochs
    curve = np.full((n, reps, epochs), np.nan)
    val = np.full((n, reps), np.nan)
    test = np.full((n, reps), np.nan)
    seconds = np.full((n, reps), np.nan, dtype=np.float32)
    seed = np.full((n, reps), -1, dtype=np.int64)
    status = np.full((n, reps), -1, dtype=np.int8)
    flops = np.zeros(n, dtype=np.int64)
    params = np.zeros(n, dtype=np.int64)
    count, platforms = 0, []
    for line, r in numbered_results(raw):
        try:
            i, k = _place(r, n, reps)
            if not (isinstance(r["curve"], list) and len(r["curve"]) <= epochs):
                raise ValueError(f"'curve' must be a list of at most {epochs} accuracies")
            curve[i, k, :len(r["curve"])] = r["curve"]
            val[i, k], test[i, k], seconds[i, k] = r["val_acc"], r["test_acc"], r["train_seconds"]
            if r["status"] not in STATUSES:
                raise ValueError(f"'status' is {r['status']!r}, expected one of {list(STATUSES)}")
            seed[i, k], status[i, k] = r["seed"], STATUSES.index(r["status"])
            if r["status"] == "ok" or not flops[i]:  # a failed training records 0 FLOPs
                flops[i], params[i] = r["flops"], r["params"]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise UserError(f"{raw} line {line} is not a build result ({type(exc).__name__}: {exc}); "
                            "rebuild it with `ma2ml bench build`") from None
        if r.get("platform") not in platforms:
            platforms.append(r.get("platform"))
        count += 1
    if not count:
        raise UserError(f"{raw} holds no results; run `ma2ml bench build` first")
    problem = values_problem({"curve": curve, "val_acc": val, "test_acc": test, "train_seconds": seconds,
                              "seed": seed, "status": status, "flops": flops, "params": params})
    if problem is not None:
        raise UserError(f"{raw} holds results a table cannot: {problem}; rebuild them with `ma2ml bench build`")
    meta = {**space_fingerprint(spaces, BENCH_BUDGET), "statuses": list(STATUSES), "entries": count,
            "flops_constraint": BENCH_FLOPS_CONSTRAINT, "build_platform": platforms[0] if len(platforms) == 1 else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: np.savez_compressed(
        fh, meta=np.array(json.dumps(meta)), curve=curve, val_acc=val, test_acc=test, train_seconds=seconds,
        seed=seed, status=status, flops=flops, params=params, extra=extra_subset(n)))
