"""Building the benchmark table: train every pipeline in worker processes into a resumable
JSON-lines file (:func:`run_build`), then write the package file (:func:`compact`); the
platform of every build result is recorded (:func:`build_platform`).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ma2ml.bench.space import (BENCH_BUDGET, BENCH_FLOPS_CONSTRAINT, EXTRA_SEEDS, SUBSET_SEED, TASK_NAME,
                                        bench_spaces, bench_task, extra_subset, joint_nvec, pipeline_seed,
                                        pipeline_tokens, space_fingerprint)
from ma2ml.bench.table import TABLE_PATH, values_problem
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.files import (MAX_INPUT_BYTES, atomic_write, cannot_create_in, check_input_file,
                                   input_file_problem, nearest_folder)
from ma2ml.envs.core.records import STATUSES

BUILD_THREADS = 1
"""Torch threads of each build worker (and of a retraining that should reproduce an entry)."""


PLATFORM_ENV_VARS = ("ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")
"""Environment variables that change which CPU kernels torch runs."""


KERNEL_FIELDS = ("torch", "cpu_capability", "cpu_model", "torch_threads", "env")
"""The fields of :func:`build_platform` that select the kernels, hence the bits of a training's result."""


# -- the platform ---------------------------------------------------------------------------------
def build_platform() -> dict[str, Any]:
    """What this process trains on: versions, CPU, kernel settings and torch threads.

    Retraining an entry with its stored seed reproduces it bit for bit only where the
    :data:`KERNEL_FIELDS` equal those recorded in the table (``meta["build_platform"]``):
    oneDNN and ATen pick kernels by CPU instruction set (see docs/benchmark.md).
    """
    import platform

    import torch

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "env": {name: os.environ.get(name) for name in PLATFORM_ENV_VARS},
    }


def _cpu_model() -> str:
    """The "model name" of /proc/cpuinfo where present, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def platform_mismatch(recorded: Mapping[str, Any] | None, current: Mapping[str, Any] | None = None) -> str | None:
    """Why retraining on ``current`` (default: this process) may differ from a table built on ``recorded``.

    ``None`` when the :data:`KERNEL_FIELDS` agree (same kernels: entries retrain bit for bit).
    """
    if not recorded:
        return "the table records no build platform (built before the record, or on several platforms)"
    current = build_platform() if current is None else current
    differ = [k for k in KERNEL_FIELDS if recorded.get(k) != current.get(k)]
    if not differ:
        return None
    built = ", ".join(f"{k}={recorded.get(k)!r}" for k in differ)
    here = ", ".join(f"{k}={current.get(k)!r}" for k in differ)
    return f"table built on {built}; this machine has {here}"


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


def _check_writable(path: str | Path, what: str) -> Path:
    """Refuse a file path to write that is empty, a folder or not writable; creates and changes nothing.

    An existing file is opened for appending; otherwise an unnamed temporary file is made in
    the nearest existing folder (the folders to create are not created).
    """
    if not str(path):
        raise UserError(f"the {what} path is empty")
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    if path.exists() and (problem := input_file_problem(path)) is not None:  # /dev/zero, a FIFO, a huge file
        raise UserError(f"{what} {path}: {problem}; give a regular file (or a new name)")
    folder = nearest_folder(path.absolute().parent)
    if not folder.is_dir():
        raise UserError(f"cannot write {what} {path}: {folder} is not a folder")
    exists = path.exists()
    try:
        if exists:
            path.open("ab").close()
            reason = None
        else:
            reason = cannot_create_in(folder)
    except OSError as exc:
        reason = exc.strerror
    if reason is not None:
        raise UserError(f"cannot write {what} {path}: {path if exists else folder} is not writable ({reason})")
    return path


def check_table_path(out: str | Path, raw: str | Path | None = None) -> Path:
    """Refuse a table path that :func:`compact` could not write, before anything is trained or written.

    It must end in ``.npz``, not be a folder, lie under a writable folder and differ from the raw file.
    """
    path = _check_writable(out, "table")
    if path.suffix != ".npz":
        raise UserError(f"table {path} must end in .npz")
    if raw is not None and Path(raw).absolute().resolve() == path.absolute().resolve():
        raise UserError(f"the raw results file and the table are the same file {path}; use two names")
    return path


def raw_fingerprint(path: Path) -> dict[str, Any] | None:
    """The fingerprint line of a raw build file (None when the file is empty)."""
    with check_input_file(path, "raw build file").open("rb") as fh:
        first = fh.readline(MAX_INPUT_BYTES)
    if not first:
        return None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or set(header) != {"fingerprint"}:
        raise UserError(f"{path} is not a raw build file (its first line is not a fingerprint); use another --raw")
    return header["fingerprint"]


def read_raw(raw: str | Path) -> Iterator[dict[str, Any]]:
    """The results of a raw build file (its first line is the fingerprint; a torn last line is skipped)."""
    for _, result in _numbered_results(Path(raw)):
        yield result


def _numbered_results(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, result) of a raw build file; a line that is not a JSON object is one error naming it."""
    if not path.exists():
        return
    with check_input_file(path, "raw build file").open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh):
            if n == 0 or not line.endswith("\n"):
                continue
            try:
                result = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise UserError(f"{path} line {n + 1} is not a JSON result ({exc})") from None
            if not isinstance(result, dict):
                raise UserError(f"{path} line {n + 1} is not a JSON result (a JSON {type(result).__name__}, "
                                "expected an object)")
            yield n + 1, result


def open_raw(path: Path, fingerprint: dict[str, Any]) -> TextIO:
    """Open the raw file for appending, writing or checking its fingerprint line; drop a torn last line."""
    if path.exists() and path.stat().st_size:
        if raw_fingerprint(path) != json.loads(json.dumps(fingerprint)):
            raise UserError(f"{path} was built for another space or budget; use a new --raw file")
        data = path.read_bytes()
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
        return path.open("a", encoding="utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("w", encoding="utf-8")
    fh.write(json.dumps({"fingerprint": fingerprint}) + "\n")
    fh.flush()
    return fh


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
    path = _check_writable(raw, "raw build file")
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
    for line, r in _numbered_results(raw):
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
