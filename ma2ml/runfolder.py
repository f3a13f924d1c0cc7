"""The run folder of ``ma2ml search``: its files, how they are written, locked and read back.

A run folder holds one search (one learner, one env, one seed):

* ``run.json``: the run's settings (env, env_args, learner, learner_args, budget,
  batch_size, seed), as JSON;
* ``evals.sqlite``: the evaluation store (:mod:`ma2ml.envs.runtime.store`), the source of truth:
  every evaluation is written there, one transaction each, before the learner hears of it;
* ``checkpoint.pt``: the learner's state, the env's generator, the evaluation count and the
  batch boundaries after the last full batch (plain tensors, lists and numbers: it is
  loaded with ``torch.load(weights_only=True)``, so a planted file cannot run code);
* ``results.jsonl``: one JSON object per evaluation, in index order (:func:`result_row`);
  it holds no wall-clock figure, so the same seed gives a byte-identical file on CPU.
  On every resume it is rebuilt from the store (a file emptied, truncated or torn by a
  kill comes back whole);
* ``timings.jsonl``: ``index`` and ``train_seconds`` of each evaluation (wall clock);
* ``best.json``: the best evaluation so far with its pipeline in human terms and the run's
  settings;
* ``.lock``: an OS-level lock (``flock``) held while a process works in the folder; the
  kernel releases it when that process dies, however it dies. Its text names the holder.

Every file but the two JSON-lines logs is replaced atomically (a uniquely named temporary
file in the same folder, fsync, rename), so a kill at any moment leaves either the old or
the new file, never a torn one; the logs are appended to and rebuilt from the store.
"""
from __future__ import annotations

from ma2ml.envs.core.errors import UserError

import bisect
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ma2ml.envs.core.files import cannot_create_in, nearest_folder

RUN_FILE = "run.json"
STORE_FILE = "evals.sqlite"
CHECKPOINT_FILE = "checkpoint.pt"
RESULTS_FILE = "results.jsonl"
TIMINGS_FILE = "timings.jsonl"
BEST_FILE = "best.json"
LOCK_FILE = ".lock"
RUN_ID = "search"
"""The store's run id of a search."""


class RunFolderError(UserError):
    """A run folder that cannot be used as asked (one line: the folder, the problem, the fix)."""


# -- writing ------------------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` by ``data`` atomically: a unique temporary file beside it, fsync, rename
    (:func:`ma2ml.envs.core.files.atomic_write`)."""
    from ma2ml.envs.core.files import atomic_write

    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as indented JSON, replacing ``path`` atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def atomic_write_lines(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """JSON lines, one row each, replacing ``path`` atomically."""
    return atomic_write_bytes(path, "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8"))


def check_writable_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as an output folder, checked before anything is written; ``RunFolderError`` otherwise.

    Refuses an empty path, an existing file, and a location where no file can be created
    (:func:`~ma2ml.envs.core.files.cannot_create_in` the nearest existing folder).
    """
    if str(path).strip() == "":
        raise RunFolderError(f"{option} is empty; give a folder path")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{option} {path} exists and is not a folder; choose a folder path")
    probe = nearest_folder(path)
    if not probe.is_dir():
        raise RunFolderError(f"{option} {path}: {probe} is a file, so no folder can be made there")
    reason = cannot_create_in(probe)
    if reason is not None:
        raise RunFolderError(f"{option} {path}: cannot write in {probe} ({reason}); choose a writable location")
    return path


def make_folder(path: Path) -> bool:
    """Create ``path`` (and parents); True when this call created it (the caller may remove it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise RunFolderError(f"{path} exists and is not a folder") from None
        return False
    return True


@contextmanager
def folder_lock(folder: Path, what: str = "run folder") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder/.lock`` for the block; ``RunFolderError`` naming the
    holder when another process has it. The kernel releases it when this process dies."""
    fh = open(folder / LOCK_FILE, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "a process that has not said who it is"
            raise RunFolderError(f"{what} {folder} is in use by {holder}; wait for it to finish, "
                                 "or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime())}\n")
        fh.flush()
        yield
    finally:
        fh.close()


# -- rows ---------------------------------------------------------------------------------------
def result_row(index: int, batch: int, tokens: Mapping[str, Sequence[int]], record: Any,
               reward: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``results.jsonl`` row, ``timings.jsonl`` row) of one evaluation; one function for the rows
    written live and those rebuilt from the store, so both are byte-identical."""
    metrics = record.to_dict()
    seconds = metrics.pop("train_seconds")
    pipeline = metrics.pop("pipeline")
    status = metrics.pop("status")
    result = {"index": int(index), "batch": int(batch), "tokens": {a: [int(t) for t in v] for a, v in tokens.items()},
              "pipeline": pipeline, "reward": float(reward), "status": status, "metrics": metrics}
    return result, {"index": int(index), "train_seconds": seconds}


def batch_of(index: int, batch_starts: Sequence[int]) -> int:
    """The batch an evaluation belonged to, from the sorted start index of every batch."""
    return bisect.bisect_right(batch_starts, index) - 1


# -- reading ------------------------------------------------------------------------------------
def read_json(path: Path, what: str) -> Any:
    """A JSON file, or ``RunFolderError`` naming it (missing, empty, unreadable or not JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFolderError(f"{what} {path} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{what} {path} cannot be read ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = "is empty" if not text.strip() else f"is not valid JSON ({exc})"
        raise RunFolderError(f"{what} {path} {problem}") from None


def read_results(folder: Path) -> list[dict[str, Any]]:
    """The rows of ``folder/results.jsonl``; ``RunFolderError`` naming the file and line if malformed."""
    path = folder / RESULTS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing; rerun the search to rebuild it from its store") from None
    rows = []
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunFolderError(f"{path} line {n} is not valid JSON ({exc}); rerun the search to rebuild "
                                 "the file from its store") from None
        if not isinstance(row, dict) or not {"index", "batch", "reward"} <= set(row):
            raise RunFolderError(f"{path} line {n} is not a results row (index, batch, reward, ...)")
        rows.append(row)
    return rows


def evaluations_done(folder: Path) -> int | None:
    """Evaluations a run folder's ``best.json`` reports (None when it has no readable one)."""
    try:
        best = read_json(folder / BEST_FILE, "best.json")
    except RunFolderError:
        return None
    count = best.get("evaluations") if isinstance(best, dict) else None
    return count if isinstance(count, int) else None
