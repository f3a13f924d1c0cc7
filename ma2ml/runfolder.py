"""The run folder of ``ma2ml search``: its files, how they are written, locked and read back.

A run folder holds one search (one learner, one env, one seed):

* ``run.json``: the run's settings (env, env_args, learner, learner_args, budget,
  batch_size, seed), as JSON;
* ``evals.sqlite``: the evaluation store (:mod:`ma2ml.runtime.store`), the source of truth:
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

The store (with the checkpoint's count and batch starts) is the record; the logs are views of
it for people and other programs. :func:`read_stored_run` reads the record and
:func:`log_rows` turns it into the logs' rows, so a reader that must not trust the logs
(``ma2ml compare``) takes its numbers from the store and :func:`mend_logs` rewrites a log
that differs from it.
"""
from __future__ import annotations

from ma2ml.envs.core.errors import UserError

import bisect
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ma2ml.envs.core.files import cannot_create_in, nearest_folder

if TYPE_CHECKING:
    from ma2ml.envs.core.records import EvalRecord
    from ma2ml.runtime.store import StoredEvaluation

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
@contextmanager
def names_file(path: str | Path, always: bool = False) -> Iterator[None]:
    """An ``OSError`` in the block comes out naming ``path`` (a full disk fails in ``write``,
    ``flush`` or ``fsync``, which name no file), so the CLI's one line says which file; ``always``:
    also when it named another file (a temporary file standing in for ``path``)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and not always:
            raise
        raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from exc


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` by ``data`` atomically: a unique temporary file beside it, fsync, rename
    (:func:`ma2ml.envs.core.files.atomic_write`); an ``OSError`` names ``path``."""
    from ma2ml.envs.core.files import atomic_write

    with names_file(path, always=True):
        return atomic_write(path, lambda fh: fh.write(data))


def append_lines(fh: IO[str], path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append JSON lines to a log open as ``fh`` and flush them; an ``OSError`` names ``path``."""
    with names_file(path):
        fh.write(json_lines(rows).decode("utf-8"))
        fh.flush()


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as indented JSON, replacing ``path`` atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def json_lines(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """JSON lines, one row each: the bytes of a log."""
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")


def atomic_write_lines(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """JSON lines, one row each, replacing ``path`` atomically."""
    return atomic_write_bytes(path, json_lines(rows))


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


def evaluations_done(folder: Path) -> int | None:
    """Evaluations a run folder's ``best.json`` reports (None when it has no readable one)."""
    try:
        best = read_json(folder / BEST_FILE, "best.json")
    except RunFolderError:
        return None
    count = best.get("evaluations") if isinstance(best, dict) else None
    return count if isinstance(count, int) else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A search checkpoint, loaded with ``weights_only=True`` (plain data only: nothing in the file runs)."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunFolderError(f"{path} is not a readable search checkpoint ({first[:200]}); it was damaged or "
                             "not written by ma2ml: delete it to restart the run from its store, or choose a "
                             "new --out") from None
    if not isinstance(state, dict) or not isinstance(state.get("evaluations"), int):
        raise RunFolderError(f"{path} is not a search checkpoint (no evaluation count); delete it to restart "
                             "the run from its store, or choose a new --out")
    starts = state.get("batch_starts")
    if starts is not None and not (isinstance(starts, list) and all(isinstance(b, int) for b in starts)
                                   and starts == sorted(starts)):
        raise RunFolderError(f"{path} is not a search checkpoint (its batch starts are not sorted integers); "
                             "delete it to restart the run from its store, or choose a new --out")
    picks = state.get("picks")
    if picks is not None and not (isinstance(picks, list) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(type(x) is int for x in p)
            and 0 <= p[1] < p[0] <= state["evaluations"] for p in picks)):
        raise RunFolderError(f"{path} is not a search checkpoint (its recorded recommendations are not pairs of "
                             "evaluations told and an earlier evaluation's index); delete it to restart the run "
                             "from its store, or choose a new --out")
    return state


# -- the record ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredRun:
    """A run folder's record: the store's evaluations below the checkpoint's count, and the batch starts."""

    evaluations: list[StoredEvaluation]
    """The store's evaluations of the run with an index below ``checkpointed``, by index."""
    checkpointed: int
    """Evaluations the checkpoint records (the learner has heard of them all)."""
    batch_starts: list[int]
    """The first index of every batch."""
    picks: dict[int, int] | None = None
    """The learner's recorded ``recommend()`` after each batch (evaluations told -> index of the pipeline's
    first evaluation), for learners with their own recommendation; None for the others."""

    def complete(self, budget: int) -> bool:
        """Whether the checkpoint records ``budget`` evaluations and the store holds every one of them."""
        return self.checkpointed == budget and [e.index for e in self.evaluations] == list(range(budget))


def read_stored_run(folder: Path, batch_size: int) -> StoredRun | None:
    """The record of the run in ``folder`` (None: it has no checkpoint or no store yet).

    A damaged store or checkpoint is one ``RunFolderError``/``StoreError`` naming the file.
    ``batch_size`` gives the batch starts of a checkpoint written before they were recorded.
    """
    from ma2ml.runtime.store import EvalStore

    checkpoint, store = folder / CHECKPOINT_FILE, folder / STORE_FILE
    if not checkpoint.is_file() or not store.is_file() or store.stat().st_size == 0:
        return None
    state = load_checkpoint(checkpoint)
    done = state["evaluations"]
    with EvalStore(store) as s:
        evaluations = [e for e in s.evaluations(RUN_ID) if e.index < done]
    picks = {int(n): int(i) for n, i in state.get("picks") or ()}
    return StoredRun(evaluations, done, list(state.get("batch_starts") or range(0, done, batch_size)),
                     picks or None)


def log_rows(evaluations: Sequence[StoredEvaluation], agents: Sequence[str], reward: Callable[[EvalRecord], float],
             batch_starts: Sequence[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(``results.jsonl`` rows, ``timings.jsonl`` rows) of stored evaluations, with the env's ``reward``:
    the rows a search writes live (:func:`result_row`), so both logs come back byte for byte."""
    results, timings = [], []
    for evaluation in evaluations:
        tokens = json.loads(evaluation.key)
        result, timing = result_row(evaluation.index, batch_of(evaluation.index, batch_starts),
                                    {a: tokens[a] for a in agents}, evaluation.record, reward(evaluation.record))
        results.append(result)
        timings.append(timing)
    return results, timings


def mend_logs(folder: Path, results: Sequence[Mapping[str, Any]],
              timings: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rewrite ``results.jsonl``/``timings.jsonl`` in ``folder`` where they differ from the rows built
    from the store (:func:`log_rows`), atomically; returns what was wrong with each rewritten file
    (empty: both matched, nothing was written)."""
    problems = []
    for name, rows in ((RESULTS_FILE, results), (TIMINGS_FILE, timings)):
        path = folder / name
        want = json_lines(rows)
        try:
            have = path.read_bytes()
        except FileNotFoundError:
            have = None
        if have == want:
            continue
        atomic_write_bytes(path, want)
        problems.append(f"{path} {_difference(have, want)}")
    return problems


def _difference(have: bytes | None, want: bytes) -> str:
    """How a log differs from what the store says it holds (for one line)."""
    if have is None:
        return "was missing"
    lines, truth = have.splitlines(), want.splitlines()
    first = next((n for n, (a, b) in enumerate(zip(lines, truth), 1) if a != b), None)
    if first is not None:
        return f"differed from the store at line {first}"
    if len(lines) != len(truth):
        return f"had {len(lines)} rows where the store holds {len(truth)}"
    return "differed from the store in its line endings"
