"""The ``digits`` benchmark: an exhaustive table of real training results and its evaluator.

**The space** (task ``digits-bench``, 5,184 pipelines, every module a real agent):

* ``aug`` (2 tokens, 4 x 4): one AutoAugment sub-policy of two operations, each among
  AutoContrast (nearly the identity on digits), Rotate, TranslateY and Cutout, applied with
  probability 0.5 at magnitude level 5;
* ``nas`` (4 tokens, 3^4): a normal cell of two blocks with fixed inputs (block 0 reads
  cells k-2 and k-1, block 1 reads cell k-1 and block 0), each of the four operations among
  sep conv 3x3, dil conv 3x3 and max pool 3x3;
* ``hpo`` (2 tokens, 2 x 2): learning rate in {0.05, 0.2} and batch size in {64, 128}.

**The budget**: one stage of one cell, 16 channels, 4 epochs of SGD (Nesterov momentum 0.9,
weight decay 5e-4, cosine schedule) on the fixed 60 % train split of scikit-learn's digits,
random 1-pixel crops; the FLOPs constraint is the median of the space (144,544 multiply-adds).

**The table** (``envs/data/digits_bench.npz``) holds, for every pipeline, the record of
:class:`~ma2ml.envs.evaluators.TrainEvaluator` on CPU (one torch thread) with a seed derived
from the pipeline index (:func:`pipeline_seed`): per-epoch validation accuracy, final
validation and test accuracy, FLOPs, params, train seconds, seed and status; a fixed random
10 % of the pipelines has two more seeds. Pipelines are numbered in mixed radix over the
agents' concatenated tokens (aug, nas, hpo; the last token varies fastest), see
:func:`pipeline_index`. :func:`load_table` checks a table file (arrays, shapes, dtypes,
metadata against the space) and turns any problem into one ``ValueError``.

**Building it**: :func:`run_build` trains the missing entries in worker processes and
appends each result to a JSON-lines file as it finishes (so an interrupted build resumes
where it stopped); :func:`compact` writes the package file. ``ma2ml bench build`` does both;
bad paths and arguments are refused before anything is trained or written
(:func:`check_table_path`).

**Reproducing it**: retraining an entry with its stored seed gives the stored record bit
for bit only on the platform that built it: torch's CPU kernels depend on the instruction
set. Each result records its worker's :func:`build_platform` and the table's metadata
keeps it (``meta["build_platform"]``); :func:`platform_mismatch` says whether this machine
matches. Elsewhere retraining agrees within a fraction of the seed noise (docs/benchmark.md).

**Using it**: :class:`TableEvaluator` answers from the table behind the env API
(``ma2ml/AutoML-DigitsBench-v0``, ``ma2ml/JointAutoML-DigitsBench-v0``); its ``seed``
option returns a fixed replicate or one drawn per episode from the env's generator, its
``epoch`` option the accuracy after fewer epochs; :meth:`TableEvaluator.lookup` is the
vectorized path for learners. :func:`table_stats` computes the published statistics.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

from ma2ml.envs.automl_v0 import AutoMLParallelEnv
from ma2ml.envs.evaluators import STATUSES, EvalRecord, Evaluator
from ma2ml.envs.joint import JointAutoMLEnv
from ma2ml.envs.spaces import AugSpace, HParams, HpoSpace, ModuleSpace, NasSpace
from ma2ml.envs.tasks import DEFAULT_GENOTYPE, Budget, Task, get_task, register_task

TASK_NAME = "digits-bench"
"""The registered task of the benchmark's space and budget."""

TABLE_PATH = Path(__file__).resolve().parent / "data" / "digits_bench.npz"
"""The committed table (package data)."""

EXTRA_FRACTION = 0.1
"""Share of the pipelines trained with extra seeds."""
EXTRA_SEEDS = 2
"""Extra seeds of those pipelines (3 seeds in all)."""
SUBSET_SEED = 20230
"""Seed of the choice of the extra-seed subset and of the build order."""

BENCH_BUDGET = Budget(epochs=4, channels=16, cells_per_stage=1, stages=1, crop_padding=1, flip=False,
                      eval_batch_size=1024)
"""The table's proxy budget: about half a second of one CPU thread per evaluation."""
BENCH_FLOPS_CONSTRAINT = 144_544.0
"""C of the reward: the median FLOPs (multiply-adds) of the space's 81 cells."""
BUILD_THREADS = 1
"""Torch threads of each build worker (and of a retraining that should reproduce an entry)."""
PLATFORM_ENV_VARS = ("ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")
"""Environment variables that change which CPU kernels torch runs."""
KERNEL_FIELDS = ("torch", "cpu_capability", "cpu_model", "torch_threads", "env")
"""The fields of :func:`build_platform` that select the kernels, hence the bits of a training's result."""


def bench_spaces() -> dict[str, ModuleSpace]:
    """The benchmark's module spaces (see the module docstring)."""
    return {
        "aug": AugSpace(num_sub_policies=1, ops=("AutoContrast", "Rotate", "TranslateY", "Cutout"),
                        probs=(0.5,), magnitudes=(5,)),
        "nas": NasSpace(num_blocks=2, ops=("sep_conv_3x3", "dil_conv_3x3", "max_pool_3x3"), cells=("normal",),
                        fixed_inputs=((0, 1), (1, 2))),
        "hpo": HpoSpace({"lr": (0.05, 0.2), "batch_size": (64, 128)}, base=HParams()),
    }


register_task(Task(
    name=TASK_NAME,
    description="the digits benchmark table's space and budget (5,184 pipelines, 4 epochs, 1 cell)",
    load=get_task("digits").load,
    spaces={agent: (lambda a=agent: bench_spaces()[a]) for agent in ("aug", "nas", "hpo")},
    default_architecture=DEFAULT_GENOTYPE,
    budget=BENCH_BUDGET,
    flops_constraint=BENCH_FLOPS_CONSTRAINT,
), overwrite=True)


def bench_task() -> Task:
    return get_task(TASK_NAME)


# -- pipeline numbering ---------------------------------------------------------------------------
def joint_nvec(spaces: Mapping[str, ModuleSpace]) -> np.ndarray:
    """Sizes of the agents' concatenated tokens."""
    return np.concatenate([s.nvec for s in spaces.values()])


def pipeline_index(spaces: Mapping[str, ModuleSpace], joint: np.ndarray) -> np.ndarray:
    """Pipeline numbers of joint token rows ``(B, T)`` (mixed radix, last token fastest); checked."""
    nvec = joint_nvec(spaces)
    joint = np.asarray(joint)
    if joint.ndim != 2 or joint.shape[1] != len(nvec):
        raise ValueError(f"expected joint token rows of shape (B, {len(nvec)}), got {joint.shape}")
    if joint.size and not np.issubdtype(joint.dtype, np.integer):
        raise ValueError(f"joint tokens must be integers, got dtype {joint.dtype}")
    bad = (joint < 0) | (joint >= nvec)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        agent, name, local = _token_owner(spaces, col)
        raise ValueError(
            f"agent {agent!r}: token {local} ({name}) = {int(joint[row, col])} is out of range; "
            f"valid values are 0..{nvec[col] - 1} ({list(_field(spaces[agent], name).choices)})"
        )
    return np.ravel_multi_index(tuple(joint.T.astype(np.int64)), tuple(int(n) for n in nvec))


def pipeline_tokens(spaces: Mapping[str, ModuleSpace], index: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`pipeline_index` for one pipeline: agent -> tokens."""
    nvec = joint_nvec(spaces)
    total = int(np.prod(nvec))
    if not 0 <= int(index) < total:
        raise ValueError(f"pipeline index {index} is out of range; valid values are 0..{total - 1}")
    flat = np.array(np.unravel_index(int(index), tuple(int(n) for n in nvec)), dtype=np.int64)
    out, start = {}, 0
    for agent, space in spaces.items():
        out[agent] = flat[start:start + len(space.nvec)]
        start += len(space.nvec)
    return out


def _token_owner(spaces: Mapping[str, ModuleSpace], col: int) -> tuple[str, str, int]:
    for agent, space in spaces.items():
        if col < len(space.nvec):
            return agent, space.token_names[col], col
        col -= len(space.nvec)
    raise IndexError(col)


def _field(space: ModuleSpace, name: str) -> Any:
    return next(f for f in space.token_fields if f.name == name)


def space_fingerprint(spaces: Mapping[str, ModuleSpace], budget: Budget) -> dict[str, Any]:
    """What a table was built for: every agent's fields and choices, and the budget."""
    return {
        "task": TASK_NAME,
        "spaces": {a: {f.name: [str(c) for c in f.choices] for f in s.fields} for a, s in spaces.items()},
        "budget": asdict(budget),
    }


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


# -- building -------------------------------------------------------------------------------------
def pipeline_seed(index: int, replicate: int) -> int:
    """The training seed of a pipeline's replicate (0 = main entry), derived from its index."""
    state = np.random.SeedSequence([SUBSET_SEED, int(index), int(replicate)]).generate_state(1, dtype=np.uint32)
    return int(state[0] >> 1)


def extra_subset(n_pipelines: int) -> np.ndarray:
    """The sorted pipeline indices trained with extra seeds (a fixed random 10 %)."""
    rng = np.random.default_rng(SUBSET_SEED)
    return np.sort(rng.choice(n_pipelines, size=round(EXTRA_FRACTION * n_pipelines), replace=False))


def build_jobs(n_pipelines: int) -> list[tuple[int, int]]:
    """Every ``(index, replicate)`` to train, in the (seeded, shuffled) build order."""
    jobs = [(i, 0) for i in range(n_pipelines)]
    jobs += [(int(i), r) for i in extra_subset(n_pipelines) for r in range(1, EXTRA_SEEDS + 1)]
    order = np.random.default_rng(SUBSET_SEED + 1).permutation(len(jobs))
    return [jobs[k] for k in order]


_WORKER: dict[str, Any] = {}


def _init_worker(parent_pid: int) -> None:
    import torch

    from ma2ml.envs.evaluators import TrainEvaluator
    from ma2ml.envs.executors import die_with_parent

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
        raise ValueError(f"the {what} path is empty")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {what} {path}: {folder} is not a folder")
    exists = path.exists()
    try:
        if exists:
            path.open("ab").close()
        else:
            tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ValueError(f"cannot write {what} {path}: {path if exists else folder} is not writable "
                         f"({exc.strerror})") from None
    return path


def check_table_path(out: str | Path, raw: str | Path | None = None) -> Path:
    """Refuse a table path that :func:`compact` could not write, before anything is trained or written.

    It must end in ``.npz``, not be a folder, lie under a writable folder and differ from the raw file.
    """
    path = _check_writable(out, "table")
    if path.suffix != ".npz":
        raise ValueError(f"table {path} must end in .npz")
    if raw is not None and Path(raw).absolute().resolve() == path.absolute().resolve():
        raise ValueError(f"the raw results file and the table are the same file {path}; use two names")
    return path


def _raw_fingerprint(path: Path) -> dict[str, Any] | None:
    """The fingerprint line of a raw build file (None when the file is empty)."""
    with path.open("rb") as fh:
        first = fh.readline()
    if not first:
        return None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or set(header) != {"fingerprint"}:
        raise ValueError(f"{path} is not a raw build file (its first line is not a fingerprint); use another --raw")
    return header["fingerprint"]


def read_raw(raw: str | Path) -> Iterator[dict[str, Any]]:
    """The results of a raw build file (its first line is the fingerprint; a torn last line is skipped)."""
    path = Path(raw)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n == 0 or not line.endswith("\n"):
                continue
            try:
                result = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path} line {n + 1} is not a JSON result ({exc})") from None
            yield result


def _open_raw(path: Path, fingerprint: dict[str, Any]) -> TextIO:
    """Open the raw file for appending, writing or checking its fingerprint line; drop a torn last line."""
    if path.exists() and path.stat().st_size:
        if _raw_fingerprint(path) != json.loads(json.dumps(fingerprint)):
            raise ValueError(f"{path} was built for another space or budget; use a new --raw file")
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
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if limit is not None and not (isinstance(limit, (int, np.integer)) and limit >= 1):
        raise ValueError(f"limit must be an integer >= 1 (or None for every job), got {limit!r}")
    path = _check_writable(raw, "raw build file")
    spaces = bench_spaces()
    n = int(np.prod(joint_nvec(spaces)))
    out = _open_raw(path, space_fingerprint(spaces, BENCH_BUDGET))
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


def compact(raw: str | Path, out: str | Path = TABLE_PATH) -> Path:
    """Write the package table (compressed ``.npz``) from a raw build file; missing entries stay NaN.

    The metadata's ``build_platform`` is the :func:`build_platform` the results were trained
    on, or ``None`` when they came from several platforms or from workers that did not
    record one. Bad paths are refused before anything is written.
    """
    path = check_table_path(out, raw)
    raw = Path(raw)
    if raw.is_dir():
        raise ValueError(f"raw build file {raw} is a folder; give the .jsonl file of a build")
    if not raw.exists():
        raise FileNotFoundError(f"no raw build file at {raw}; run `ma2ml bench build` first")
    spaces = bench_spaces()
    if _raw_fingerprint(raw) not in (None, json.loads(json.dumps(space_fingerprint(spaces, BENCH_BUDGET)))):
        raise ValueError(f"{raw} was built for another space or budget than {TASK_NAME!r}")
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
    for r in read_raw(raw):
        i, k = r["index"], r["replicate"]
        curve[i, k, :len(r["curve"])] = r["curve"]
        val[i, k], test[i, k], seconds[i, k] = r["val_acc"], r["test_acc"], r["train_seconds"]
        seed[i, k], status[i, k] = r["seed"], STATUSES.index(r["status"])
        flops[i], params[i] = r["flops"], r["params"]
        if r.get("platform") not in platforms:
            platforms.append(r.get("platform"))
        count += 1
    if not count:
        raise ValueError(f"{raw} holds no results; run `ma2ml bench build` first")
    meta = {**space_fingerprint(spaces, BENCH_BUDGET), "statuses": list(STATUSES), "entries": count,
            "flops_constraint": BENCH_FLOPS_CONSTRAINT, "build_platform": platforms[0] if len(platforms) == 1 else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta)), curve=curve, val_acc=val, test_acc=test,
                            train_seconds=seconds, seed=seed, status=status, flops=flops, params=params,
                            extra=extra_subset(n))
    return path


# -- the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    """The arrays of a table file, indexed ``[pipeline]`` or ``[pipeline, replicate]`` (see :func:`compact`)."""

    meta: dict[str, Any]
    """The space fingerprint, budget, status names and the FLOPs constraint it was built for."""
    curve: np.ndarray
    """Validation accuracy after each epoch, ``(N, R, E)`` (NaN where not trained)."""
    val_acc: np.ndarray
    """Final validation accuracy, ``(N, R)`` (0 for failed trainings, NaN where not trained)."""
    test_acc: np.ndarray
    """Final test accuracy, ``(N, R)``."""
    train_seconds: np.ndarray
    """Wall-clock seconds of training and scoring on one CPU thread, ``(N, R)``."""
    seed: np.ndarray
    """Training seed, ``(N, R)`` (-1 where not trained)."""
    status: np.ndarray
    """Index into ``meta["statuses"]``, ``(N, R)`` (-1 where not trained)."""
    flops: np.ndarray
    """Multiply-adds of one forward pass, ``(N,)``."""
    params: np.ndarray
    """Trainable parameters, ``(N,)``."""
    extra: np.ndarray
    """Pipelines trained with extra seeds (sorted indices)."""

    @property
    def n_pipelines(self) -> int:
        return len(self.flops)

    @cached_property
    def replicates(self) -> np.ndarray:
        """Stored replicates per pipeline, ``(N,)`` (replicates are stored from 0 up)."""
        return (self.status >= 0).sum(axis=1)


def table_layout() -> dict[str, tuple[tuple[int, ...], str]]:
    """Array name -> (shape, dtype kind: ``"f"`` float, ``"i"`` integer) of a table file (see :class:`Table`)."""
    n, reps, epochs = int(np.prod(joint_nvec(bench_spaces()))), 1 + EXTRA_SEEDS, BENCH_BUDGET.epochs
    return {
        "curve": ((n, reps, epochs), "f"), "val_acc": ((n, reps), "f"), "test_acc": ((n, reps), "f"),
        "train_seconds": ((n, reps), "f"), "seed": ((n, reps), "i"), "status": ((n, reps), "i"),
        "flops": ((n,), "i"), "params": ((n,), "i"), "extra": ((round(EXTRA_FRACTION * n),), "i"),
    }


_KINDS = {"f": ("f", "float"), "i": ("iu", "integer")}
_UNREADABLE = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


@lru_cache(maxsize=4)
def _load_table(path: str) -> Table:
    """Load and check a table file: any problem is one ``ValueError`` naming the file and the problem."""
    def bad(problem: str) -> ValueError:
        return ValueError(f"benchmark table {path}: {problem}")

    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"no benchmark table at {path}; build one with `ma2ml bench build`")
    if file.is_dir():
        raise bad("is a folder, not an .npz file")
    try:
        file.open("rb").close()
        data = np.load(file, allow_pickle=False) if zipfile.is_zipfile(file) else None
    except _UNREADABLE as exc:
        raise bad(f"unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        size = file.stat().st_size
        raise bad("not an .npz archive (" + (f"{size:,} bytes without a zip directory: truncated or another format"
                                             if size else "an empty file") + ")")
    layout = table_layout()
    arrays = {}
    with data:
        missing = sorted({"meta", *layout} - set(data.files))
        unexpected = sorted(set(data.files) - {"meta", *layout})
        if missing or unexpected:
            raise bad("; ".join([f"missing arrays {missing}"] * bool(missing)
                                + [f"unexpected arrays {unexpected}"] * bool(unexpected)))
        for name in ("meta", *layout):
            try:
                arrays[name] = data[name]
            except _UNREADABLE as exc:
                raise bad(f"array {name!r} is unreadable ({type(exc).__name__}: {exc})") from None
    meta_array = arrays.pop("meta")
    for name, (shape, kind) in layout.items():
        kinds, kind_name = _KINDS[kind]
        if arrays[name].shape != shape:
            raise bad(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
        if arrays[name].dtype.kind not in kinds:
            raise bad(f"array {name!r} has dtype {arrays[name].dtype}, expected {kind_name}")
    status, extra = arrays["status"], arrays["extra"]
    if status.size and (status.min() < -1 or status.max() >= len(STATUSES)):
        raise bad(f"array 'status' holds values outside -1..{len(STATUSES) - 1}")
    if extra.size and (extra.min() < 0 or extra.max() >= len(arrays["flops"])):
        raise bad(f"array 'extra' holds pipeline numbers outside 0..{len(arrays['flops']) - 1}")
    meta = _check_meta(meta_array, int((status >= 0).sum()), bad)
    for array in arrays.values():
        array.setflags(write=False)
    return Table(meta=meta, **arrays)


def _check_meta(meta_array: np.ndarray, entries: int, bad: Callable[[str], ValueError]) -> dict[str, Any]:
    """The parsed metadata of a table holding ``entries`` trainings, checked against the space."""
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise bad(f"'meta' is not a JSON string (dtype {meta_array.dtype}, shape {meta_array.shape})")
    try:
        meta = json.loads(str(meta_array))
    except ValueError as exc:
        raise bad(f"'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise bad(f"'meta' is a JSON {type(meta).__name__}, expected an object")
    expected = json.loads(json.dumps(space_fingerprint(bench_spaces(), BENCH_BUDGET)))
    if {k: meta.get(k) for k in expected} != expected:
        raise bad(f"built for another space or budget than {TASK_NAME!r}; rebuild it")
    if meta.get("statuses") != list(STATUSES):
        raise bad(f"meta 'statuses' is {meta.get('statuses')!r}, expected {list(STATUSES)}")
    if meta.get("entries") != entries:
        raise bad(f"meta 'entries' is {meta.get('entries')!r}, but the arrays hold {entries}")
    if meta.get("flops_constraint") != BENCH_FLOPS_CONSTRAINT:
        raise bad(f"meta 'flops_constraint' is {meta.get('flops_constraint')!r}, expected {BENCH_FLOPS_CONSTRAINT}")
    if not isinstance(meta.get("build_platform"), (dict, type(None))):
        raise bad(f"meta 'build_platform' is {meta['build_platform']!r}, expected an object or null")
    return meta


def load_table(path: str | Path | None = None) -> Table:
    """The table at ``path`` (default: the packaged one), loaded and checked once per process.

    A missing file is a ``FileNotFoundError``; any other problem (not an .npz archive, missing
    or misshapen arrays, metadata that does not parse or match the space) one ``ValueError``
    naming the file and the problem.
    """
    return _load_table(str(Path(path if path is not None else TABLE_PATH).expanduser().resolve()))


def batch_rewards(reward_fn: Any, acc: np.ndarray, flops: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """:class:`~ma2ml.envs.reward.FlopsReward` applied to arrays (the same formula, vectorized)."""
    flops = np.asarray(flops, dtype=np.float64)
    penalized = (flops > 0) & (reward_fn.soft | (flops > reward_fn.constraint))
    factor = np.where(penalized, (np.maximum(flops, 1.0) / reward_fn.constraint) ** reward_fn.exponent, 1.0)
    return np.where(ok, np.asarray(acc, dtype=np.float64) * factor, 0.0)


@dataclass(frozen=True)
class Lookup:
    """Table answers for a batch of joint actions (arrays of length B)."""

    index: np.ndarray
    """Pipeline numbers."""
    replicate: np.ndarray
    """Which stored training run answered."""
    ok: np.ndarray
    """Whether the training ended in status ``ok``."""
    status: np.ndarray
    """Status index (into :data:`~ma2ml.envs.evaluators.STATUSES`)."""
    val_acc: np.ndarray
    """Validation accuracy at the evaluator's epoch fidelity."""
    test_acc: np.ndarray
    """Test accuracy after the last epoch (0 at lower fidelity: it was only measured at the end)."""
    flops: np.ndarray
    """Multiply-adds of one forward pass."""
    params: np.ndarray
    """Trainable parameters."""
    train_seconds: np.ndarray
    """Stored training seconds, scaled by ``epoch / epochs`` at lower fidelity."""
    seed: np.ndarray
    """The training seed of the answering run (retrain with it to reproduce the entry)."""


class TableEvaluator(Evaluator):
    """Answers joint actions of the ``digits-bench`` space from the table (no training).

    ``seed``: ``"random"`` picks, for each evaluation, one of the pipeline's stored
    replicates with the seed the env draws per episode (``seed % replicates``: the 3-seed
    subset answers noisily like real training, the others with their one run); an integer
    ``k`` returns replicate ``k`` where stored and replicate 0 elsewhere. ``epoch``: the
    fidelity, validation accuracy after that many epochs (default: all). ``table``: a table
    file (default: the packaged one, loaded on first use); another file is loaded and checked
    at construction, so a bad one fails there. A pipeline outside the space is a
    ``ValueError`` that names the agent, the token and its valid values.
    """

    def __init__(self, table: str | Path | None = None, seed: int | str = "random", epoch: int | None = None) -> None:
        super().__init__(bench_task(), bench_spaces())
        epochs = BENCH_BUDGET.epochs
        if seed != "random" and not (isinstance(seed, (int, np.integer)) and 0 <= seed <= EXTRA_SEEDS):
            raise ValueError(f"seed must be 'random' or a replicate 0..{EXTRA_SEEDS}, got {seed!r}")
        if epoch is not None and not (isinstance(epoch, (int, np.integer)) and 1 <= epoch <= epochs):
            raise ValueError(f"epoch must be 1..{epochs} (or None for all {epochs}), got {epoch!r}")
        self.table_path = table
        self.seed = seed if seed == "random" else int(seed)
        self.epoch = epochs if epoch is None else int(epoch)
        self._pipelines: dict[int, dict[str, Any]] = {}
        self._records: dict[tuple[int, int], EvalRecord] = {}
        self._table: Table | None = None if table is None else load_table(table)

    @property
    def table(self) -> Table:
        """The table (shared by the evaluators of a process)."""
        if self._table is None:
            self._table = load_table(self.table_path)
        return self._table

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "table": str(self.table_path or TABLE_PATH.name), "seed": self.seed,
                "epoch": self.epoch}

    def data_facts(self) -> tuple[tuple[int, int, int], int, int]:
        from ma2ml.envs.tasks import load_splits

        splits = load_splits(self.task)
        return splits.image_shape, len(splits.train), splits.num_classes

    # -- the batched path -----------------------------------------------------------------------
    def joint(self, batch: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Joint actions (agent -> tokens) -> checked token rows ``(B, T)``."""
        from ma2ml.envs.evaluators import decode_actions

        rows = []
        for actions in batch:
            if not isinstance(actions, Mapping) or set(actions) != set(self.spaces):
                decode_actions(self.spaces, actions)  # raises the env's error for a wrong agent set
            rows.append(np.concatenate([s.check(actions[a], a) for a, s in self.spaces.items()]))
        return np.stack(rows) if rows else np.zeros((0, len(joint_nvec(self.spaces))), dtype=np.int64)

    def lookup(self, joint: np.ndarray, seeds: Sequence[int] | np.ndarray | None = None) -> Lookup:
        """Vectorized answers for token rows ``(B, T)``; ``seeds`` (length B) pick replicates in ``"random"`` mode."""
        t = self.table
        index = pipeline_index(self.spaces, joint)
        reps = t.replicates[index]
        if self.seed == "random":
            if seeds is None:
                raise ValueError("seed='random' needs one seed per joint action (e.g. env.next_seeds(n))")
            seeds = np.asarray(seeds, dtype=np.int64)
            if seeds.shape != index.shape:
                raise ValueError(f"expected {len(index)} seeds, got shape {seeds.shape}")
            replicate = seeds % np.maximum(reps, 1)
        else:
            replicate = np.where(reps > self.seed, self.seed, 0)
        status = t.status[index, replicate].astype(np.int64)
        if (status < 0).any():
            missing = int(index[np.argmax(status < 0)])
            raise ValueError(f"pipeline {missing} has no entry in this (partial) table; finish `ma2ml bench build`")
        full = self.epoch == BENCH_BUDGET.epochs
        if full:
            val = t.val_acc[index, replicate]
        else:
            val = np.nan_to_num(t.curve[index, replicate, self.epoch - 1], nan=0.0)
        ok = (status == 0) if full else np.isfinite(t.curve[index, replicate, self.epoch - 1])
        return Lookup(
            index=index, replicate=replicate, ok=ok, status=np.where(ok, 0, status), val_acc=np.where(ok, val, 0.0),
            test_acc=t.test_acc[index, replicate] if full else np.zeros(len(index)),
            flops=t.flops[index], params=t.params[index],
            train_seconds=t.train_seconds[index, replicate].astype(np.float64) * self.epoch / BENCH_BUDGET.epochs,
            seed=t.seed[index, replicate],
        )

    def rewards(self, joint: np.ndarray, reward_fn: Any, seeds: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Rewards of token rows ``(B, T)`` under ``reward_fn`` (e.g. ``env.reward_fn``), vectorized."""
        res = self.lookup(joint, seeds)
        return batch_rewards(reward_fn, res.val_acc, res.flops, res.ok)

    # -- the Evaluator API ------------------------------------------------------------------------
    def evaluate_batch(self, batch: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> list[EvalRecord]:
        if len(batch) != len(seeds):
            raise ValueError(f"got {len(batch)} joint actions and {len(seeds)} seeds")
        res = self.lookup(self.joint(batch), np.asarray(seeds, dtype=np.int64))
        return [replace(self._record_at(int(i), int(r))) for i, r in zip(res.index, res.replicate)]

    def evaluate(self, actions: Mapping[str, Any], seed: int) -> EvalRecord:
        """One answer from the table; the record's ``seed`` is the stored run's training seed.

        The scalar path of :meth:`evaluate_batch` (same records): what one PettingZoo ``step`` costs.
        """
        if not isinstance(actions, Mapping) or set(actions) != set(self.spaces):
            from ma2ml.envs.evaluators import decode_actions

            decode_actions(self.spaces, actions)  # raises the env's error for a wrong agent set
        index = 0
        for agent, space in self.spaces.items():
            for token, size in zip(space.check(actions[agent], agent).tolist(), space.nvec.tolist()):
                index = index * size + token
        reps = int(self.table.replicates[index])
        replicate = int(seed) % max(reps, 1) if self.seed == "random" else (self.seed if reps > self.seed else 0)
        return replace(self._record_at(index, replicate))

    def _record_at(self, index: int, replicate: int) -> EvalRecord:
        """The record of one stored training (cached). Records handed out are shallow copies: their
        ``curve`` and ``pipeline`` are shared with this cache, read them only (``to_dict()`` copies)."""
        key = (index, replicate)
        record = self._records.get(key)
        if record is not None:
            return record
        t, epochs = self.table, BENCH_BUDGET.epochs
        stored = int(t.status[index, replicate])
        if stored < 0:
            raise ValueError(f"pipeline {index} has no entry in this (partial) table; finish `ma2ml bench build`")
        full = self.epoch == epochs
        at_epoch = float(t.curve[index, replicate, self.epoch - 1])
        ok = stored == 0 if full else at_epoch == at_epoch
        val = float(t.val_acc[index, replicate]) if full else at_epoch
        status = STATUSES[0 if ok else stored]
        record = EvalRecord(
            status=status, val_acc=val if ok else 0.0, test_acc=float(t.test_acc[index, replicate]) if full else 0.0,
            flops=int(t.flops[index]), params=int(t.params[index]),
            curve=[float(v) for v in t.curve[index, replicate, :self.epoch] if v == v],
            train_seconds=float(t.train_seconds[index, replicate]) * self.epoch / epochs,
            seed=int(t.seed[index, replicate]), pipeline=self._pipeline(index),
            error=None if ok else f"stored training ended in status {status!r}",
        )
        self._records[key] = record
        return record

    def _evaluate(self, configs: Mapping[str, Any], seed: int) -> EvalRecord:
        """Decoded configs (agent -> config) -> the table's answer."""
        return self.evaluate({a: self.spaces[a].encode(c) for a, c in configs.items()}, seed)

    def reference(self, reward_fn: Any) -> tuple[float, float]:
        """(optimal reward, top-1% reward threshold) of the table's main runs under ``reward_fn``."""
        stats = table_stats(self.table, reward_fn)
        return stats["optimum"], stats["top1_threshold"]

    def _pipeline(self, index: int) -> dict[str, Any]:
        if index not in self._pipelines:
            self._pipelines[index] = self.pipeline_json(pipeline_tokens(self.spaces, index))
        return self._pipelines[index]


# -- registered envs ------------------------------------------------------------------------------
def parallel_env(table: str | Path | None = None, table_seed: int | str = "random", epoch: int | None = None,
                 **kwargs: Any) -> AutoMLParallelEnv:
    """``ma2ml/AutoML-DigitsBench-v0``: the AutoML env answering from the table (kwargs as automl_v0's)."""
    return AutoMLParallelEnv(evaluator=TableEvaluator(table, seed=table_seed, epoch=epoch), **kwargs)


def raw_env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's order-enforcing wrapper."""
    return OrderEnforcingWrapper(raw_env(**kwargs))


def joint_env(table: str | Path | None = None, table_seed: int | str = "random", epoch: int | None = None,
              **kwargs: Any) -> JointAutoMLEnv:
    """``ma2ml/JointAutoML-DigitsBench-v0``: the single-agent joint view of the table env."""
    return JointAutoMLEnv(evaluator=TableEvaluator(table, seed=table_seed, epoch=epoch), **kwargs)


# -- statistics -----------------------------------------------------------------------------------
def _agent_choices(spaces: Mapping[str, ModuleSpace], n: int) -> dict[str, np.ndarray]:
    """Each agent's joint choice (its tokens in mixed radix) for every pipeline 0..n-1."""
    nvec = [int(v) for v in joint_nvec(spaces)]
    flat = np.unravel_index(np.arange(n), nvec)
    out, start = {}, 0
    for agent, space in spaces.items():
        k = len(space.nvec)
        out[agent] = np.ravel_multi_index(flat[start:start + k], nvec[start:start + k])
        start += k
    return out


def unexplained_share(y: np.ndarray, groups: Sequence[np.ndarray]) -> float:
    """1 - R^2 of the least-squares additive model ``y ~ sum_g onehot(group g)`` (with intercept)."""
    cols = [np.ones((len(y), 1))]
    for g in groups:
        levels = np.unique(g)
        cols.append((g[:, None] == levels[None, 1:]).astype(np.float64))
    x = np.concatenate(cols, axis=1)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    return float(resid @ resid / ((y - y.mean()) @ (y - y.mean())))


def describe_searched(spaces: Mapping[str, ModuleSpace], actions: Mapping[str, Any]) -> dict[str, str]:
    """Agent -> its searched choices (the token fields only), one line each."""
    out = {}
    for agent, space in spaces.items():
        values = space.values(space.decode(actions[agent], agent))
        out[agent] = ", ".join(f"{f.name}={values[f.name]}" for f in space.token_fields)
    return out


def table_stats(table: Table, reward_fn: Any | None = None) -> dict[str, Any]:
    """The published statistics of a (complete) table, on replicate 0 unless said otherwise."""
    from scipy import stats as sps

    from ma2ml.envs.reward import FlopsReward

    reward_fn = reward_fn or FlopsReward(BENCH_FLOPS_CONSTRAINT)
    spaces = bench_spaces()
    n = table.n_pipelines
    done = table.status[:, 0] >= 0
    if not done.all():
        raise ValueError(f"the table is partial: {int((~done).sum())} of {n} pipelines have no entry")
    ok = table.status == 0
    rewards = batch_rewards(reward_fn, np.nan_to_num(table.val_acc), table.flops[:, None], ok)
    r0 = rewards[:, 0]
    order = np.argsort(-r0, kind="stable")
    top1 = max(int(np.ceil(0.01 * n)), 1)
    full3 = table.extra[(table.status[table.extra] >= 0).all(axis=1)]
    noise_reward = rewards[full3].std(axis=1, ddof=1)
    noise_val = np.nan_to_num(table.val_acc[full3]).std(axis=1, ddof=1)
    choices = _agent_choices(spaces, n)
    epochs = table.curve.shape[2]
    fidelity = {
        e + 1: float(sps.spearmanr(batch_rewards(reward_fn, np.nan_to_num(table.curve[:, 0, e]), table.flops,
                                                 np.isfinite(table.curve[:, 0, e])), r0).statistic)
        for e in range(epochs - 1)
    }
    best = int(order[0])
    return {
        "pipelines": n,
        "tokens": {a: [int(v) for v in s.nvec] for a, s in spaces.items()},
        "evaluations": int((table.status >= 0).sum()),
        "statuses": {name: int((table.status == i).sum()) for i, name in enumerate(STATUSES)},
        "train_seconds_total": float(np.nansum(table.train_seconds)),
        "train_seconds_mean": float(np.nanmean(table.train_seconds)),
        "flops_constraint": reward_fn.constraint,
        "reward_exponent": reward_fn.exponent,
        "flops_range": (int(table.flops.min()), int(table.flops.max())),
        "share_over_constraint": float((table.flops > reward_fn.constraint).mean()),
        "val_acc_range": (float(np.nanmin(table.val_acc[:, 0])), float(np.nanmax(table.val_acc[:, 0]))),
        "reward_min": float(r0.min()), "reward_max": float(r0.max()),
        "reward_mean": float(r0.mean()), "reward_std": float(r0.std()),
        "reward_quartiles": tuple(float(q) for q in np.quantile(r0, (0.25, 0.5, 0.75))),
        "optimum": float(r0[best]), "optimum_index": best,
        "optimum_pipeline": describe_searched(spaces, pipeline_tokens(spaces, best)),
        "optimum_test_acc": float(table.test_acc[best, 0]),
        "top1_count": top1, "top1_threshold": float(r0[order[top1 - 1]]),
        "seed_subset": int(len(full3)),
        "seed_noise_reward": float(np.sqrt(np.mean(noise_reward ** 2))),
        "seed_noise_val_acc": float(np.sqrt(np.mean(noise_val ** 2))),
        "noise_share": float(np.mean(noise_reward ** 2) / r0.var()),
        "unexplained_additive": unexplained_share(r0, list(choices.values())),
        "unexplained_additive_per_token": unexplained_share(
            r0, list(np.unravel_index(np.arange(n), [int(v) for v in joint_nvec(spaces)]))),
        "fidelity_spearman": fidelity,
    }


def format_stats(s: Mapping[str, Any], path: str | Path) -> str:
    """The statistics as ``ma2ml bench info`` prints them."""
    q1, q2, q3 = s["reward_quartiles"]
    lines = [
        f"table: {path}",
        f"space: {s['pipelines']:,} pipelines; tokens per agent {s['tokens']}",
        f"entries: {s['evaluations']:,} trainings ({s['seed_subset']} pipelines with 3 seeds); statuses {s['statuses']}",
        f"training: {s['train_seconds_total'] / 3600:.2f} h in all (wall-clock seconds of one-thread evaluations, summed), "
        f"{s['train_seconds_mean']:.2f} s per evaluation",
        f"FLOPs: {s['flops_range'][0]:,}..{s['flops_range'][1]:,} multiply-adds; constraint C = {s['flops_constraint']:,.0f} "
        f"(w = {s['reward_exponent']}), {100 * s['share_over_constraint']:.1f}% of pipelines above it",
        f"val acc: {s['val_acc_range'][0]:.4f}..{s['val_acc_range'][1]:.4f}",
        f"reward: min {s['reward_min']:.4f}, max {s['reward_max']:.4f}, mean {s['reward_mean']:.4f}, "
        f"std {s['reward_std']:.4f}, quartiles {q1:.4f} / {q2:.4f} / {q3:.4f}",
        f"optimum: reward {s['optimum']:.4f} (test acc {s['optimum_test_acc']:.4f}), pipeline {s['optimum_index']}:",
        *(f"  {a}: {d}" for a, d in s["optimum_pipeline"].items()),
        f"top 1% ({s['top1_count']} pipelines): reward >= {s['top1_threshold']:.4f}",
        f"seed noise (3-seed subset, pooled std): reward {s['seed_noise_reward']:.4f}, val acc {s['seed_noise_val_acc']:.4f}; "
        f"{100 * s['noise_share']:.1f}% of the reward variance",
        f"variance left unexplained by an additive per-module model: {100 * s['unexplained_additive']:.1f}% "
        f"(per-token additive model: {100 * s['unexplained_additive_per_token']:.1f}%)",
        "rank correlation (Spearman) of the reward after epoch e with the final reward: "
        + ", ".join(f"e={e}: {v:.3f}" for e, v in s["fidelity_spearman"].items()),
    ]
    return "\n".join(lines)
