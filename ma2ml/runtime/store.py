"""The evaluation store: every finished evaluation in SQLite, before anyone is told of it.

:class:`EvalStore` is one SQLite file (WAL journal, ``synchronous=FULL`` by default), one
transaction per record, so a process killed at any moment leaves every record it had
reported complete and nothing half-written. :class:`RunLog` binds a store to one run of one
evaluator; an env given ``store=`` evaluates through it:

    log = RunLog(EvalStore("evals.sqlite"), env.evaluator, run_id="run-1", cache=True)
    records = log.evaluate_batch(batch, seeds)   # written one by one as they finish

Schema (``PRAGMA application_id`` = :data:`APPLICATION_ID`, ``user_version`` = :data:`SCHEMA_VERSION`):

* ``settings(hash, json)``: what determines a record besides the pipeline: the evaluator's
  ``settings()``, the module spaces' layout and the seed policy; ``hash`` is the SHA-256 of
  their canonical JSON.
* ``runs(run_id, env_id, settings_hash, created_at, config)``: one row per run; ``config``
  is free JSON from the caller (the search's arguments).
* ``evaluations(id, run_id, eval_index, settings_hash, pipeline_key, seed, status, error,
  val_acc, train_seconds, submitted_at, finished_at, cached_from, record)``: one row per
  evaluation of a run, unique per ``(run_id, eval_index)``. ``pipeline_key`` is the
  canonical JSON of the per-agent tokens, ``record`` the whole :class:`EvalRecord` as JSON,
  ``submitted_at``/``finished_at`` Unix times, ``cached_from`` the row a cached record was
  copied from (NULL when it was trained).

The evaluation index is the position of the evaluation in the run (batch start + position in
the batch), not the order in which evaluations finished; that is what makes a resume exact:
a :class:`RunLog` re-opened on a run starts at index 0 (or at :meth:`RunLog.seek`'s
position) and serves every index already in the store from the store, provided the same
pipeline is asked there again, so a deterministic learner replayed, or one restored from a
checkpoint, finishes the run with every evaluation stored exactly once.

``cache=True``: a pipeline that has a record under the same settings hash (from any run) is
not trained again; its record is copied (the seed it was trained with included). Only
``ok`` and ``diverged`` records are reused: ``oom``, ``timeout`` and ``failed`` depend on the
machine and its load, so those pipelines are evaluated again. Within one batch a pipeline
asked twice is trained once. On CPU a record also depends on torch's thread count, which
the settings do not hold.

A file that is not an SQLite database, a damaged (truncated, malformed) one, an SQLite
database of another program, or a store of a newer schema raises :class:`StoreError`, a
``ValueError`` with one line naming the file, the problem and the fix; the file is left as
it was. So does a path SQLite cannot open (over :data:`PATH_LIMIT` bytes, a device, a FIFO),
before anything is created, and a hand-edited row whose fields are missing or of the wrong type
(the row, the field and what it must hold are named when the row is read).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator
from ma2ml.envs.core.files import input_file_problem
from ma2ml.envs.core.records import STATUSES, Actions, EvalRecord, checked_tokens
from ma2ml.envs.spaces import ModuleSpace

APPLICATION_ID = 0x4D41324D
"""``PRAGMA application_id`` of an ma2ml store ("MA2M")."""
SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the schema below."""
CACHEABLE = ("ok", "diverged")
"""Statuses whose records ``cache=True`` reuses (the others depend on the machine)."""
SQLITE_HEADER = b"SQLite format 3\x00"
PATH_LIMIT = 500
"""The longest full path of a store, in bytes: SQLite opens at most 512, and its WAL file adds ``-wal``."""

_SCHEMA = (
    """CREATE TABLE settings (
        hash TEXT PRIMARY KEY,
        json TEXT NOT NULL
    )""",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        env_id TEXT NOT NULL,
        settings_hash TEXT NOT NULL REFERENCES settings(hash),
        created_at REAL NOT NULL,
        config TEXT NOT NULL
    )""",
    f"""CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(run_id),
        eval_index INTEGER NOT NULL CHECK (eval_index >= 0),
        settings_hash TEXT NOT NULL REFERENCES settings(hash),
        pipeline_key TEXT NOT NULL,
        seed INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
        error TEXT,
        val_acc REAL NOT NULL,
        train_seconds REAL NOT NULL,
        submitted_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        cached_from INTEGER REFERENCES evaluations(id),
        record TEXT NOT NULL,
        UNIQUE (run_id, eval_index)
    )""",
    "CREATE INDEX evaluations_by_pipeline ON evaluations (settings_hash, pipeline_key, status)",
)


class StoreError(UserError):
    """An unusable store file (one line: the file, the problem, the fix)."""


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces: equal values give equal strings (non-JSON values by ``str``)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def pipeline_key(spaces: Mapping[str, ModuleSpace], actions: Actions) -> str:
    """The store's key of a joint action: canonical JSON of each agent's tokens (validated)."""
    return canonical_json(checked_tokens(spaces, actions))


def space_layout(space: ModuleSpace) -> dict[str, Any]:
    """A module space's class and fields with their choices: what the tokens mean.

    The class is named by its own ``layout_name`` where it declares one (ma2ml's spaces do: the
    names are fixed, so moving a class to another module never changes a settings hash and
    stores keep resuming), else by its module path (a user's space).
    """
    cls = type(space)
    name = cls.__dict__.get("layout_name") or f"{cls.__module__}.{cls.__qualname__}"
    return {"class": name, "fields": [[f.name, list(f.choices)] for f in space.fields]}


def run_settings(evaluator: Evaluator, seed_policy: str, legacy: bool = False) -> dict[str, Any] | None:
    """Everything besides the pipeline that determines a record: the store's settings. ``legacy``: the
    settings an earlier version recorded for the same records (:meth:`Evaluator.legacy_settings`; None
    when the evaluator has none)."""
    own = evaluator.legacy_settings() if legacy else evaluator.settings()
    if own is None:
        return None
    return {"evaluator": own,
            "spaces": {agent: space_layout(s) for agent, s in evaluator.spaces.items()},
            "seed_policy": seed_policy}


def settings_hash(settings: Mapping[str, Any]) -> str:
    """The hash a store gives a settings dict (:meth:`EvalStore.add_settings`)."""
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def settings_diff(recorded: Any, now: Any, path: str = "", limit: int = 3) -> str:
    """Where two settings dicts differ, as ``path: recorded -> now`` (the first ``limit``; values shortened)."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key, "(none)"), b.get(key, "(none)"), f"{where}.{key}" if where else str(key))
        elif a != b:
            out.append(f"{where}: {str(a)[:40]} -> {str(b)[:40]}")

    walk(recorded, now, path)
    return "; ".join(out[:limit]) + (f"; {len(out) - limit} more" if len(out) > limit else "") if out else "none"


def record_from_json(text: str) -> EvalRecord:
    """An :class:`EvalRecord` from its stored JSON (keys it does not know are ignored); a ``ValueError``
    naming the field for JSON that is not a record (a hand-edited row): :func:`record_problem`."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"field 'record' is not JSON ({exc})") from None
    problem = record_problem(data)
    if problem is not None:
        raise ValueError(problem)
    return EvalRecord(**{f.name: data[f.name] for f in fields(EvalRecord) if f.name in data})


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_RECORD_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "status": (lambda v: v in STATUSES, f"one of {list(STATUSES)}"),
    "val_acc": (_finite, "a finite number"),
    "test_acc": (_finite, "a finite number"),
    "flops": (_count, "an integer >= 0"),
    "params": (_count, "an integer >= 0"),
    "curve": (lambda v: isinstance(v, list) and all(_finite(x) for x in v), "a list of finite numbers"),
    "train_seconds": (lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
    "seed": (_count, "an integer >= 0"),
    "pipeline": (lambda v: isinstance(v, dict), "an object agent -> decoded choice"),
    "error": (lambda v: v is None or isinstance(v, str), "a string or null"),
}
"""What each stored record field must hold (``status`` is the one a record cannot lack)."""


def record_problem(data: Any) -> str | None:
    """What makes decoded record JSON unusable as an :class:`EvalRecord`, or None: the first field
    missing (``status``) or of the wrong type, named with what it must hold."""
    if not isinstance(data, dict):
        return f"field 'record' is a JSON {type(data).__name__}, expected an object"
    if "status" not in data:
        return "field 'record' lacks 'status'"
    for name, (valid, what) in _RECORD_FIELDS.items():
        if name in data and not valid(data[name]):
            return f"field 'record.{name}' is {data[name]!r:.80}, expected {what}"
    return None


def key_problem(key: Any) -> str | None:
    """What makes a stored pipeline key unusable, or None: it must be canonical JSON of agent -> tokens."""
    try:
        tokens = json.loads(key) if isinstance(key, str) else None
    except (ValueError, RecursionError) as exc:
        return f"field 'pipeline_key' is not JSON ({exc})"
    if not (isinstance(tokens, dict) and all(isinstance(t, list) and all(_count(x) for x in t)
                                              for t in tokens.values())):
        return f"field 'pipeline_key' is {key!r:.80}, expected JSON agent -> list of integer tokens"
    return None


@dataclass(frozen=True)
class StoredEvaluation:
    """One row of ``evaluations``."""

    id: int
    run_id: str
    index: int
    """Position of the evaluation in its run."""
    settings_hash: str
    key: str
    """The pipeline key (canonical JSON of the tokens)."""
    seed: int
    status: str
    error: str | None
    record: EvalRecord
    submitted_at: float
    finished_at: float
    cached_from: int | None
    """The row the record was copied from by ``cache=True`` (None: trained for this run)."""


@dataclass(frozen=True)
class RunInfo:
    """One row of ``runs``."""

    run_id: str
    env_id: str
    settings_hash: str
    created_at: float
    config: dict[str, Any]


_EVAL_COLUMNS = ("id, run_id, eval_index, settings_hash, pipeline_key, seed, status, error, record, "
                 "submitted_at, finished_at, cached_from")


_INT, _TEXT, _REAL = ((int,), "an integer"), ((str,), "text"), ((int, float), "a number")
_ROW_TYPES = (("id", _INT), ("run_id", _TEXT), ("eval_index", _INT), ("settings_hash", _TEXT),
              ("pipeline_key", _TEXT), ("seed", _INT), ("status", _TEXT), ("error", ((str, type(None)), "text or null")),
              ("record", _TEXT), ("submitted_at", _REAL), ("finished_at", _REAL),
              ("cached_from", ((int, type(None)), "a row id or null")))
"""Each column of :data:`_EVAL_COLUMNS`: the Python types SQLite must hand back (a hand-edited row may hold any)."""


def _row_problem(row: tuple) -> str | None:
    """What makes a row of ``evaluations`` unusable, or None: a column of the wrong type, a pipeline
    key that is not agent -> tokens JSON (a record that is not an :class:`EvalRecord`'s JSON is
    :func:`record_from_json`'s to name)."""
    for value, (name, (kinds, what)) in zip(row, _ROW_TYPES):
        if not isinstance(value, kinds) or isinstance(value, bool):
            return f"field {name!r} is {value!r:.80}, expected {what}"
    return key_problem(row[4])


class EvalStore:
    """An SQLite evaluation store (see the module docstring). Safe for several processes.

    ``durable=True`` syncs every record to disk (``synchronous=FULL``): it survives a power
    loss; ``False`` (``NORMAL``) survives a killed process but not a power loss, and writes
    faster. ``timeout``: seconds to wait while another process holds the write lock. A
    missing file is created (its folder too).
    """

    def __init__(self, path: str | Path, durable: bool = True, timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self._conn = self._open(durable, timeout)

    def _fail(self, problem: str, fix: str = "move it away or choose another store file") -> StoreError:
        return StoreError(f"evaluation store {self.path}: {problem}; {fix}")

    def _row_to_eval(self, row: tuple) -> StoredEvaluation:
        """A row of ``evaluations`` as a :class:`StoredEvaluation`; a hand-edited row that is not one is a
        ``StoreError`` naming the store, the row, the field and the fix."""
        problem = _row_problem(row)
        if problem is None:
            try:
                record = record_from_json(row[8])
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            where = f"row id {row[0]!r} (run {row[1]!r}, evaluation {row[2]!r})"
            raise self._fail(f"{where}: {problem}", "delete that row (the evaluation is run again) or restore "
                                                    "the store from a copy")
        i, run, index, sh, key, seed, status, error, _, sub, fin, cached = row
        return StoredEvaluation(i, run, index, sh, key, seed, status, error, record, sub, fin, cached)

    def _open(self, durable: bool, timeout: float) -> sqlite3.Connection:
        full = os.path.abspath(self.path)
        if len(os.fsencode(full)) > PATH_LIMIT:
            raise self._fail(f"its full path is {len(os.fsencode(full)):,} bytes, more than the {PATH_LIMIT} SQLite "
                             "can open", "choose a shorter path (or a folder nearer the root)")
        if self.path.is_dir():
            raise self._fail("is a folder", "give a file name inside it, e.g. evals.sqlite")
        problem = input_file_problem(self.path, limit=sys.maxsize) if self.path.exists() else None
        if problem is not None:  # /dev/zero, a FIFO (opening it would block), a socket
            raise self._fail(problem)
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
            if head != SQLITE_HEADER:
                raise self._fail("is not an SQLite database (it is some other file)")
        if self.path.exists():
            try:
                with self.path.open("r+b"):
                    pass
            except OSError as exc:
                raise self._fail(f"is read-only ({exc.strerror})",
                                 "make it writable, or copy it and give the copy as the store") from None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:  # a file in the way of a folder, no permission
            raise self._fail(f"cannot be created ({getattr(exc, 'strerror', None) or exc})",
                             "check the folder exists or can be made and is writable") from None
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise self._fail(f"is damaged or truncated (quick_check: {check[0] if check else 'no answer'})",
                                 "restore it from a copy, or move it away and start a new store")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if tables and app_id != APPLICATION_ID:
                raise self._fail(f"is an SQLite database of another program (tables {sorted(tables)})")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if tables and version > SCHEMA_VERSION:
                raise self._fail(f"has schema version {version}, newer than this ma2ml's {SCHEMA_VERSION}",
                                 "upgrade ma2ml to read it")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            if not tables:
                self._create(conn)
        except sqlite3.OperationalError as exc:  # locked, read-only, disk full: the file may be fine
            conn.close()
            raise self._fail(f"cannot be opened for writing (SQLite: {exc})",
                             "check its permissions, free disk space and that no other program holds it") from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._fail(f"is damaged or truncated (SQLite: {exc})",
                             "restore it from a copy, or move it away and start a new store") from None
        except StoreError:
            conn.close()
            raise
        return conn

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:  # not raced by another process
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; an SQLite failure (read-only, disk full, locked) is one ``StoreError``."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise self._fail(f"cannot be written (SQLite: {exc})",
                             "check its permissions, free disk space and that no other program holds it") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EvalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------
    def add_settings(self, settings: Mapping[str, Any]) -> str:
        """Store a settings dict (once); returns its hash."""
        text = canonical_json(settings)
        digest = settings_hash(settings)
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO settings (hash, json) VALUES (?, ?)", (digest, text))
        return digest

    def open_run(self, run_id: str, env_id: str, settings_hash: str, config: Mapping[str, Any] | None = None) -> RunInfo:
        """Create a run, or check that an existing one has the same settings; returns it."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO runs (run_id, env_id, settings_hash, created_at, config) VALUES (?, ?, ?, ?, ?)",
                (run_id, env_id, settings_hash, time.time(), canonical_json(dict(config or {}))),
            )
        run = self.run(run_id)
        if run.settings_hash != settings_hash:
            differ = settings_diff(self.settings(run.settings_hash), self.settings(settings_hash))
            raise StoreError(f"evaluation store {self.path}: run {run_id!r} was recorded with other evaluator "
                             f"settings ({differ}); resume it with the same settings or start a new run id")
        return run

    def has_run(self, run_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def put(self, run_id: str, index: int, settings_hash: str, key: str, record: EvalRecord,
            submitted_at: float, cached_from: int | None = None) -> int:
        """Write one evaluation in its own transaction; returns its row id."""
        with self._transaction() as conn:
            cur = conn.execute(
                "INSERT INTO evaluations (run_id, eval_index, settings_hash, pipeline_key, seed, status, error, "
                "val_acc, train_seconds, submitted_at, finished_at, cached_from, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, index, settings_hash, key, record.seed, record.status, record.error, record.val_acc,
                 record.train_seconds, submitted_at, time.time(), cached_from, json.dumps(record.to_dict())),
            )
        return int(cur.lastrowid)

    # -- reading ----------------------------------------------------------------------------
    def run(self, run_id: str) -> RunInfo:
        row = self._conn.execute("SELECT run_id, env_id, settings_hash, created_at, config FROM runs "
                                 "WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"evaluation store {self.path}: no run {run_id!r}; its runs are {self.run_ids()}")
        try:
            config = json.loads(row[4])
        except (TypeError, ValueError, RecursionError):
            config = None
        if not isinstance(config, dict):
            raise self._fail(f"run {run_id!r}: field 'config' is {row[4]!r:.80}, not a JSON object",
                             "restore the store from a copy, or start a new run id")
        return RunInfo(row[0], row[1], row[2], row[3], config)

    def run_ids(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT run_id FROM runs ORDER BY created_at, run_id")]

    def settings(self, settings_hash: str) -> dict[str, Any]:
        row = self._conn.execute("SELECT json FROM settings WHERE hash = ?", (settings_hash,)).fetchone()
        if row is None:
            raise StoreError(f"evaluation store {self.path}: no settings {settings_hash!r}")
        try:
            return json.loads(row[0])
        except (TypeError, ValueError, RecursionError) as exc:
            raise self._fail(f"settings {settings_hash!r}: field 'json' is not JSON ({exc})",
                             "restore the store from a copy, or start a new store") from None

    def get(self, run_id: str, index: int) -> StoredEvaluation | None:
        """The evaluation at ``index`` of a run, if it is stored."""
        row = self._conn.execute(f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE run_id = ? AND eval_index = ?",
                                 (run_id, index)).fetchone()
        return None if row is None else self._row_to_eval(row)

    def lookup(self, settings_hash: str, key: str) -> StoredEvaluation | None:
        """The earliest reusable (:data:`CACHEABLE`) record of a pipeline under these settings."""
        marks = ", ".join("?" for _ in CACHEABLE)
        row = self._conn.execute(
            f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE settings_hash = ? AND pipeline_key = ? "
            f"AND status IN ({marks}) AND cached_from IS NULL ORDER BY id LIMIT 1",
            (settings_hash, key, *CACHEABLE),
        ).fetchone()
        return None if row is None else self._row_to_eval(row)

    def evaluations(self, run_id: str | None = None) -> list[StoredEvaluation]:
        """Stored evaluations, of one run by index, or of all runs by row id."""
        if run_id is None:
            rows = self._conn.execute(f"SELECT {_EVAL_COLUMNS} FROM evaluations ORDER BY id")
        else:
            rows = self._conn.execute(f"SELECT {_EVAL_COLUMNS} FROM evaluations WHERE run_id = ? "
                                      "ORDER BY eval_index", (run_id,))
        return [self._row_to_eval(r) for r in rows]

    def count(self, run_id: str | None = None) -> int:
        if run_id is None:
            return int(self._conn.execute("SELECT count(*) FROM evaluations").fetchone()[0])
        return int(self._conn.execute("SELECT count(*) FROM evaluations WHERE run_id = ?", (run_id,)).fetchone()[0])
