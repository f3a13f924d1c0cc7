"""The raw results files every table build writes, and the platform each result was trained on.

A raw results file is JSON lines: the first line is the space fingerprint (``{"fingerprint": ...}``),
then one result per finished training, flushed; a rerun skips what is done, a torn last line is
dropped on reopening, and a file built for another space is refused. Every result records the
:func:`build_platform` it was trained on (the kernels decide a training's bits). Both builders
write these files: :mod:`~ma2ml.bench.hard.sharded` (every table since the hard tier) and
:mod:`~ma2ml.bench.digits_build` (the frozen digits table's recipe).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.files import (MAX_INPUT_BYTES, cannot_create_in, check_input_file, input_file_problem,
                                   nearest_folder)

BUILD_THREADS = 1
"""Torch threads of each build worker (and of a retraining that should reproduce an entry)."""


PLATFORM_ENV_VARS = ("ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")
"""Environment variables that change which CPU kernels torch runs."""


KERNEL_FIELDS = ("torch", "cpu_capability", "cpu_model", "torch_threads", "env", "nas_kernels")
"""The fields of :func:`build_platform` that select the kernels, hence the bits of a training's result
(``nas_kernels``: :data:`ma2ml.models.nasnet.KERNELS`; tables recorded before it have none, generation 1)."""


# -- the platform ---------------------------------------------------------------------------------
def build_platform() -> dict[str, Any]:
    """What this process trains on: versions, CPU, kernel settings and torch threads.

    Retraining an entry with its stored seed reproduces it bit for bit only where the
    :data:`KERNEL_FIELDS` equal those recorded in the table (``meta["build_platform"]``):
    oneDNN and ATen pick kernels by CPU instruction set (see docs/benchmark.md), and the NAS
    cells' own kernel generation changes the floats too. A build resumed across a change of
    any of them stores no platform (its results came from several).
    """
    import platform

    import torch

    from ma2ml.models.nasnet import KERNELS

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "env": {name: os.environ.get(name) for name in PLATFORM_ENV_VARS},
        "nas_kernels": KERNELS,
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


def check_writable(path: str | Path, what: str) -> Path:
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
    path = check_writable(out, "table")
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
    for _, result in numbered_results(Path(raw)):
        yield result


def numbered_results(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
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


Job = tuple[int, int]
"""``(pipeline index, replicate)``; replicate 0 is the main run."""


def done_jobs(path: str | Path) -> set[Job]:
    """The ``(index, replicate)`` pairs already in a results file."""
    return {(int(r["index"]), int(r["replicate"])) for r in read_raw(path)}


class ResultsFile:
    """A resumable JSON-lines results file of one space: which jobs it holds, and appending more."""

    def __init__(self, path: str | Path, fingerprint: dict[str, Any]) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.done = done_jobs(self.path) if self.path.exists() else set()
        self._out: TextIO | None = None

    def append(self, line: dict[str, Any]) -> None:
        """Write one result line and flush it (the file and its fingerprint line are made on first use)."""
        if self._out is None:
            self._out = open_raw(self.path, self.fingerprint)
        self._out.write(json.dumps(line) + "\n")
        self._out.flush()
        self.done.add((int(line["index"]), int(line["replicate"])))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
