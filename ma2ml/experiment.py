"""An :class:`Experiment`: one learner on one registered env, recorded in a resumable run folder.

    from ma2ml import Experiment
    best = Experiment(env="ma2ml/AutoML-DigitsBench-v0", learner="ma2ml", budget=64, batch_size=8,
                      seed=0, out="runs/digits-ma2ml").run()

BenchMARL's shape: the env is the game, the learner plays it, and the experiment owns the
rest: the evaluation store, the seeds, where evaluations run (``executor``, ``workers``), the
checkpoint and resume, and the run folder ``out`` (format: :mod:`ma2ml.runfolder`):
``results.jsonl`` (one row per evaluation, byte-identical for the same seed on CPU),
``timings.jsonl``, ``best.json``, ``evals.sqlite`` (every evaluation, stored before the learner
hears of it), ``checkpoint.pt`` and ``run.json``. ``ma2ml search`` is a thin wrapper over it.

Running an experiment again on an ``out`` that holds an interrupted run resumes it: the learner
is restored from its checkpoint (loaded with ``weights_only=True``: nothing in the file runs),
the store is checked to hold every evaluation the checkpoint counted, evaluations stored since
are answered from the store, and none is lost or trained twice. A finished run continues to a
larger ``budget``; any other difference of settings is refused. Where evaluations run is no
setting of the run: a run resumes under another ``executor``. A second process on the same
``out`` gets one :class:`~ma2ml.runfolder.RunFolderError` naming the process that holds it.

Bad input (an unknown learner, a budget, batch size or seed out of range, an unusable ``out``,
env or learner arguments that cannot be stored as JSON or that the run folder decides) is one
:class:`~ma2ml.envs.core.errors.UserError` at construction, before anything is written; its
message names the ``ma2ml search`` option that sets the field (``--budget``, ``--env-arg``, ...).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ma2ml.envs import make_parallel
from ma2ml.envs.automl_v0 import MAX_SEED
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.fields import shorten
from ma2ml.runfolder import (BEST_FILE, CHECKPOINT_FILE, RESULTS_FILE, RUN_FILE, RUN_ID, STORE_FILE, TIMINGS_FILE,
                             RunFolderError, append_lines, atomic_write_bytes, atomic_write_json, atomic_write_lines,
                             check_writable_folder, evaluations_done, folder_lock, load_checkpoint, log_rows,
                             make_folder, mend_logs, read_json, read_stored_run, result_row)

if TYPE_CHECKING:
    from ma2ml.report import Run, Truth

DEFAULT_ENV = "ma2ml/AutoML-Digits-v0"
DEFAULT_LEARNER = "ma2ml"
MAX_BUDGET = 10_000_000
"""Largest accepted budget (evaluations in one run)."""
MAX_BATCH = 100_000
"""Largest accepted batch (a batch's proposals are made at once)."""
MAX_WORKERS = 1024
"""Most worker processes of the ``process`` executor."""
EXECUTORS = ("inprocess", "process", "ray")
"""Where evaluations run: here (``inprocess``), a local process pool, Ray (:mod:`ma2ml.runtime.executors`)."""
RUN_ENV_ARGS = ("store", "run_id")
"""Env arguments the experiment sets itself (the run folder's store)."""
LEGACY_SETTINGS = {"no_repeat": False}
"""Settings of run folders written before the setting existed (runs before December 2026 allowed repeats)."""


def check_seed(seed: int, option: str) -> None:
    """One ``UserError`` for a seed outside 0..:data:`MAX_SEED`."""
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"{option} must be an integer in 0..{MAX_SEED} (2**32 - 1), got {seed}")


def check_run_args(learner: str, budget: int, batch_size: int, seed: int = 0) -> None:
    """One ``UserError`` for an unknown learner or a budget, batch size or seed out of range."""
    from ma2ml.learners import learner_spec

    try:
        learner_spec(learner)  # a registered name, or "module:Class" (imported now)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for name, value, top in (("budget", budget, MAX_BUDGET), ("batch-size", batch_size, MAX_BATCH)):
        if not 1 <= value <= top:
            raise UserError(f"--{name} must be an integer in 1..{top:,}, got {value}")
    check_seed(seed, "--seed")


def check_env_args(env_args: Mapping[str, Any]) -> None:
    """One ``UserError`` when the env arguments set what a run folder decides (its store and run id)."""
    if set(env_args) & set(RUN_ENV_ARGS):
        raise UserError(f"--env-arg {sorted(set(env_args) & set(RUN_ENV_ARGS))} is set by ma2ml itself "
                        f"(the store is {STORE_FILE} in each run folder); leave it out")


def runtime_args(env_args: Mapping[str, Any], executor: str | None, workers: int | None) -> dict[str, Any]:
    """The env arguments of where evaluations run (``executor``, ``workers``; only those given), or one
    ``UserError`` for an unknown executor, a worker count out of range or an argument given twice."""
    given = {k: v for k, v in (("executor", executor), ("workers", workers)) if v is not None}
    twice = sorted(set(given) & set(env_args))
    if twice:
        key = twice[0]
        raise UserError(f"{key} is given twice (--{key} {given[key]} and --env-arg {key}={env_args[key]!r}); "
                        "give it once")
    if executor is not None and executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {shorten(executor)}")
    if workers is not None and not (isinstance(workers, int) and 1 <= workers <= MAX_WORKERS):
        raise UserError(f"--workers must be an integer in 1..{MAX_WORKERS}, got {shorten(workers)}")
    if workers is not None and env_args.get("executor", executor) != "process":
        raise UserError(f"--workers {workers} needs --executor process (workers are the local pool's processes)")
    return given


def normalized(settings: Mapping[str, Any], option: str) -> dict[str, Any]:
    """``settings`` as they read back from JSON (tuples become lists), or one ``UserError`` naming the key."""
    for key, value in settings.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{option} {key} = {shorten(value)} is invalid: values must be finite numbers, "
                            f"strings, lists, dicts, True, False or None ({exc})") from None
    return json.loads(json.dumps(dict(settings), allow_nan=False))


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """One learner on one registered env, written to the run folder :attr:`out` (see the module docstring).

    Every field is checked at construction (one ``UserError``); :meth:`run` starts or resumes the run.
    """

    out: str | Path
    """The run folder (made when missing; an earlier run there resumes)."""
    env: str = DEFAULT_ENV
    """Registered PettingZoo id (``ma2ml.list_envs()``)."""
    env_args: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the env (JSON values; never ``store``/``run_id``: the run folder's)."""
    learner: str = DEFAULT_LEARNER
    """Learner name (``ma2ml list``) or ``"module:Class"``."""
    learner_args: Mapping[str, Any] = field(default_factory=dict)
    """Config fields of the learner (JSON values)."""
    budget: int = 64
    """Evaluations in all, 1..:data:`MAX_BUDGET` (a finished run continues to a larger one)."""
    batch_size: int = 8
    """Evaluations per batch, 1..:data:`MAX_BATCH`."""
    seed: int = 0
    """Seed of the env and the learner, 0..:data:`MAX_SEED`."""
    no_repeat: bool | None = None
    """The learners' no-repeat protocol (:mod:`ma2ml.agents.base`); None: on for a new run, a resumed run
    keeps its own."""
    executor: str | None = None
    """Where evaluations run: ``"inprocess"``, ``"process"`` (a local pool), ``"ray"``; None: the env's
    default (or ``env_args["executor"]``). Not a setting of the run: a run resumes under another."""
    workers: int | None = None
    """Processes of the ``"process"`` executor, 1..:data:`MAX_WORKERS` (None: one per core, or per GPU)."""

    def __post_init__(self) -> None:
        check_run_args(self.learner, self.budget, self.batch_size, self.seed)
        object.__setattr__(self, "out", check_writable_folder(self.out))
        object.__setattr__(self, "env_args", dict(self.env_args))
        object.__setattr__(self, "learner_args", dict(self.learner_args))
        check_env_args(self.env_args)
        runtime_args(self.env_args, self.executor, self.workers)
        from ma2ml.learners import learner_config

        learner_config(self.learner, **self.learner_args)  # every field's type and range
        normalized(self.env_args, "--env-arg")
        normalized(self.learner_args, "--learner-arg")

    def settings(self) -> dict[str, Any]:
        """What ``run.json`` records (a resumed run must match all but the budget)."""
        return {"env": self.env, "env_args": normalized(self.env_args, "--env-arg"), "learner": self.learner,
                "learner_args": normalized(self.learner_args, "--learner-arg"), "budget": self.budget,
                "batch_size": self.batch_size, "seed": self.seed, "no_repeat": self.no_repeat}

    def run(self, progress: bool = True) -> dict[str, Any]:
        """Start, resume or extend the run; returns the best row (``results.jsonl``'s fields) with its
        ``description`` and the run's ``evaluations``.

        Every evaluation is stored in ``evals.sqlite`` before the learner hears of it, and the learner
        is checkpointed after every batch. The folder is locked while the run goes on; bad input leaves
        nothing behind, not even the parent folders it made. ``progress``: a tqdm bar on stderr.
        """
        out = check_writable_folder(self.out)
        settings = self.settings()
        first_new = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
        make_folder(out)
        with folder_lock(out):
            try:
                env, learner, state, stored = self._open(settings)
            except BaseException:
                if first_new is not None:
                    shutil.rmtree(first_new, ignore_errors=True)
                raise
            return _Session(out, settings, env, learner, state).run(stored, progress)

    def finished(self) -> bool:
        """Whether the run is finished: its ``best.json`` and its checkpoint report :attr:`budget`
        evaluations and its store holds every one (an unreadable ``best.json``: not finished)."""
        out = Path(self.out)
        if evaluations_done(out) != self.budget:
            return False
        stored = read_stored_run(out, self.batch_size)
        return stored is not None and stored.complete(self.budget)

    def read(self, env: Any, truth: Truth | None = None,
             on_mended: Callable[[str], None] | None = None) -> Run:
        """The finished run for a report, read from its store and checkpoint, never from its logs
        (:func:`~ma2ml.runfolder.read_stored_run`); ``env`` scores the records (its reward), ``truth``
        (:class:`~ma2ml.report.Truth`) scores its pipelines on the ground truth. A log that differs
        from the store is rewritten from it and ``on_mended`` hears one line about it."""
        from ma2ml.report import Run

        out = Path(self.out)
        with folder_lock(out):
            stored = read_stored_run(out, self.batch_size)
            if stored is None or not stored.complete(self.budget):
                raise RunFolderError(f"{out} holds {0 if stored is None else len(stored.evaluations)} of its "
                                     f"{self.budget} evaluations; rerun the comparison to resume it")
            best = read_json(out / BEST_FILE, "best.json")
            wall = best.get("wall_seconds") if isinstance(best, dict) else None
            if not isinstance(wall, (int, float)):
                raise RunFolderError(f"{out / BEST_FILE} has no wall_seconds; rerun the comparison to rewrite it")
            results, timings = log_rows(stored.evaluations, env.possible_agents, env.reward, stored.batch_starts)
            for problem in mend_logs(out, results, timings):
                if on_mended is not None:
                    on_mended(problem)
        return Run.from_records(self.learner, self.seed, results, wall, timings, truth, stored.picks)

    def _open(self, settings: dict[str, Any]) -> tuple[Any, Any, dict[str, Any], list[Any]]:
        """The env, the learner (restored when resuming), the resume state and the stored evaluations
        below the checkpoint (checked to be all there); writes ``run.json``."""
        from ma2ml.learners import make_learner

        out = Path(self.out)
        state = _resume_state(out, settings) or {"evaluations": 0}
        done = state["evaluations"]
        store = out / STORE_FILE
        if done and (not store.exists() or store.stat().st_size == 0):
            raise RunFolderError(f"{store} is {'missing' if not store.exists() else 'empty'} but the checkpoint "
                                 f"records {done} evaluations; restore the store from a copy, or choose a new --out")
        runtime = runtime_args(self.env_args, self.executor, self.workers)
        env = make_parallel(self.env, **self.env_args, **runtime, store=str(store), run_id=RUN_ID)
        try:
            env.reset(seed=self.seed)
            if settings["no_repeat"] is None:  # a new run: the no-repeat protocol (docs/learners.md: why also
                settings["no_repeat"] = True  # under seed noise, where re-evaluation is a learner setting)
            learner = make_learner(self.learner, env, seed=self.seed, **self.learner_args)
            if "learner" in state:
                learner.load_state_dict(state["learner"])
                env.np_random.bit_generator.state = state["np_random"]
            stored = [e for e in env.run_log.records() if e.index < done]
            _check_store(out, stored, done)
            if done and not learner.observations():  # a checkpoint from before recommend(): rebuild them
                ordered = sorted(stored, key=lambda e: e.index)
                learner.observe([json.loads(e.key) for e in ordered], [env.reward(e.record) for e in ordered])
            for evaluation in stored:  # an evaluator that draws among replicates catches up (exact resume)
                env.evaluator.replay(json.loads(evaluation.key), evaluation.record)
            env.run_log.seek(done)
        except BaseException:
            env.close()
            raise
        table_sha256 = env.evaluator.settings().get("table_sha256")
        if table_sha256 is not None:  # the bytes a table run answers from (the store's key holds it too)
            settings["table_sha256"] = table_sha256
        atomic_write_json(out / RUN_FILE, settings)
        return env, learner, state, stored


def _resume_state(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint of an earlier run in ``out`` (None: a new run); refuses other settings.

    Every setting but the budget must match; the budget may grow (extending a finished run)
    or shrink down to the evaluations already made. An unset ``no_repeat`` takes the run's own.
    """
    run_file = out / RUN_FILE
    if not run_file.exists():
        if (out / RESULTS_FILE).exists():
            raise UserError(f"{out} holds {RESULTS_FILE} but no {RUN_FILE}; choose a new --out folder")
        return None
    stored = read_json(run_file, "run settings")
    if not isinstance(stored, dict):
        raise RunFolderError(f"run settings {run_file} is not a JSON object; choose a new --out folder")
    stored = {**LEGACY_SETTINGS, **stored}
    if settings["no_repeat"] is None:
        settings["no_repeat"] = stored["no_repeat"]
    diff = sorted(k for k in settings if k not in ("budget", "table_sha256") and stored.get(k) != settings[k])
    if diff:
        raise UserError(f"{out} holds a run with other settings ({', '.join(diff)} differ: "
                        f"{ {k: stored.get(k) for k in diff} }); rerun with those or choose a new --out folder")
    path = out / CHECKPOINT_FILE
    state = load_checkpoint(path) if path.exists() else {"evaluations": 0}
    if settings["budget"] < state["evaluations"]:
        raise UserError(f"{out} holds {state['evaluations']} evaluations already; --budget must be at least "
                        "that (a larger budget extends the run)")
    return state


def _check_store(out: Path, stored: list[Any], done: int) -> None:
    """``RunFolderError`` unless the store holds every evaluation below the checkpoint's count."""
    have = {e.index for e in stored}
    if len(have) == done:
        return
    missing = [i for i in range(done) if i not in have]
    raise RunFolderError(
        f"{out / STORE_FILE} holds {len(have)} of the {done} evaluations the checkpoint recorded (missing "
        f"indexes {_ranges(missing)}): the store was damaged, replaced or lost its WAL file; restore it from a "
        "copy, or delete checkpoint.pt to redo the missing evaluations, or choose a new --out")


def _ranges(indexes: list[int]) -> str:
    spans, start = [], indexes[0]
    for prev, cur in zip(indexes, indexes[1:] + [None]):
        if cur != prev + 1:
            spans.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(spans[:5]) + (", ..." if len(spans) > 5 else "")


class _Session:
    """One open run: the env and learner of a locked run folder, its logs, checkpoint and ``best.json``."""

    def __init__(self, out: Path, settings: dict[str, Any], env: Any, learner: Any, state: dict[str, Any]) -> None:
        self.out, self.settings, self.env, self.learner, self.state = out, settings, env, learner, state
        self.agents = list(learner.agents)
        done = state["evaluations"]
        self.batch_starts = list(state.get("batch_starts") or range(0, done, settings["batch_size"]))
        self.picks: list[list[int]] = [list(p) for p in state.get("picks") or ()]
        """[evaluations told, index of the recommended pipeline's first evaluation] after each batch, for
        learners whose ``recommend()`` is their own (:attr:`~ma2ml.agents.base.Learner.own_recommendation`)."""
        self.first_index: dict[str, int] = {}
        """Pipeline (canonical tokens JSON) -> index of its first evaluation in the run."""
        self.best: dict[str, Any] | None = None

    def run(self, stored: list[Any], progress: bool) -> dict[str, Any]:
        """Rebuild the logs from the store, then learn to the budget, recording every batch."""
        import time

        import numpy as np
        from tqdm import tqdm

        out, settings, env, learner = self.out, self.settings, self.env, self.learner
        self.best = self._rebuild_logs(stored)
        self.start = time.perf_counter()
        bar = tqdm(total=settings["budget"], initial=self.state["evaluations"],
                   desc=f"{settings['learner']} on {settings['env']}", unit="eval", disable=not progress,
                   dynamic_ncols=True)
        env.run_log.on_record = lambda _index, _record: bar.update(1)  # moves per evaluation, with an ETA
        try:
            with open(out / RESULTS_FILE, "a", encoding="utf-8") as results, \
                    open(out / TIMINGS_FILE, "a", encoding="utf-8") as timings:
                def record(batch: Any) -> None:
                    self._record(batch, results, timings)
                    bar.set_postfix(best=f"{self.best['reward']:.4f}")

                if learner.num_evaluations < settings["budget"]:
                    learner.learn(env, settings["budget"], settings["batch_size"], callback=record,
                                  no_repeat=settings["no_repeat"])
                elif self.best is not None:  # a finished run: make sure best.json says so
                    self._write_best(self.state.get("wall_seconds", 0.0))
        finally:
            bar.close()
            learner.close()
            env.close()
        best = self.best
        actions = {a: np.asarray(best["tokens"][a]) for a in self.agents}
        return {**best, "description": env.describe(actions), "evaluations": learner.num_evaluations,
                "recommended": self._recommended()}

    def _rebuild_logs(self, stored: list[Any]) -> dict[str, Any] | None:
        """Rewrite ``results.jsonl``/``timings.jsonl`` from the stored evaluations; returns the best row."""
        results, timings = log_rows(stored, self.agents, self.env.reward, self.batch_starts)
        atomic_write_lines(self.out / RESULTS_FILE, results)
        atomic_write_lines(self.out / TIMINGS_FILE, timings)
        for row in results:
            self.first_index.setdefault(json.dumps(row["tokens"], sort_keys=True), row["index"])
        return max(results, key=lambda row: row["reward"], default=None)  # ties: the earliest

    def _record(self, batch: Any, results: Any, timings: Any) -> None:
        """After a batch: append its rows to the logs, then checkpoint and rewrite ``best.json``."""
        import time

        import numpy as np

        self.batch_starts.append(batch.start)
        rows = [result_row(batch.start + k, batch.index, {a: np.asarray(actions[a]).tolist() for a in self.agents},
                           rec, reward)
                for k, (actions, reward, rec) in enumerate(zip(batch.actions, batch.rewards, batch.records,
                                                               strict=True))]
        append_lines(results, self.out / RESULTS_FILE, [result for result, _ in rows])
        append_lines(timings, self.out / TIMINGS_FILE, [timing for _, timing in rows])
        for result, _ in rows:
            self.first_index.setdefault(json.dumps(result["tokens"], sort_keys=True), result["index"])
            if self.best is None or result["reward"] > self.best["reward"]:
                self.best = result
        recommended = self._recommended()
        if self.learner.own_recommendation:
            self.picks.append([self.learner.num_evaluations, recommended["index"]])
        wall = time.perf_counter() - self.start
        self._save_checkpoint(wall)
        self._write_best(wall, recommended)

    def _save_checkpoint(self, wall: float) -> None:
        """Learner state, the env's generator, the batch starts and the wall time, written atomically after a
        batch (the best row is not kept: it is rebuilt from the store with the logs)."""
        import io

        import torch

        state = {"learner": self.learner.state_dict(), "np_random": self.env.np_random.bit_generator.state,
                 "evaluations": self.learner.num_evaluations, "batch_starts": list(self.batch_starts),
                 "picks": [list(p) for p in self.picks], "wall_seconds": wall}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.out / CHECKPOINT_FILE, buffer.getvalue())

    def _write_best(self, wall: float, recommended: dict[str, Any] | None = None) -> None:
        """``best.json``, atomically (``recommended``: :meth:`_recommended`, when the caller has it)."""
        import numpy as np

        best = self.best
        actions = {a: np.asarray(best["tokens"][a]) for a in self.agents}
        atomic_write_json(self.out / BEST_FILE, {**best, "description": self.env.describe(actions),
                                                 "settings": self.settings, "wall_seconds": wall,
                                                 "evaluations": self.learner.num_evaluations,
                                                 "recommended": recommended or self._recommended()})

    def _recommended(self) -> dict[str, Any]:
        """The learner's ``recommend()``: its first evaluation's index, its tokens, its observed mean and how
        many times it was evaluated (several under seed noise with repeats, re-evaluation or racing)."""
        import numpy as np

        learner = self.learner
        pick = learner.recommend()
        row = learner.joint([pick])[0]
        mean, count = next((m, c) for r, m, c in learner.observations() if np.array_equal(r, row))
        tokens = {a: np.asarray(pick[a]).tolist() for a in self.agents}
        return {"index": self.first_index[json.dumps(tokens, sort_keys=True)], "tokens": tokens,
                "observed_mean": mean, "evaluations_of_it": count}
