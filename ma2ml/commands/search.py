"""``ma2ml search``: run one learner on one registered env and record every evaluation.

    ma2ml search --env ma2ml/AutoML-Digits-v0 --learner ma2ml --budget 64 --batch-size 8 \\
                 --seed 0 --out runs/digits-ma2ml [--env-arg epochs=1 ...] [--learner-arg kl_coef=0.05 ...]

Writes the run folder ``--out`` (format: :mod:`ma2ml.runfolder`): ``results.jsonl`` (one row
per evaluation, byte-identical for the same seed on CPU), ``timings.jsonl``, ``best.json``,
``evals.sqlite`` (every evaluation, stored before the learner hears of it), ``checkpoint.pt``
and ``run.json``; it prints the best pipeline (``env.describe``) at the end.

Running the same command again on an ``--out`` that holds an interrupted run resumes it: the
learner is restored from its checkpoint (loaded with ``weights_only=True``: nothing in the file
runs), the store is checked to hold every evaluation the checkpoint counted, evaluations
stored since are answered from the store, and none is lost or trained twice. A finished run
continues to a larger ``--budget``; any other difference of settings is refused. A second
process on the same ``--out`` exits with one line naming the process that holds it.

Unknown env or learner names, budgets, batch sizes or seeds out of range, an unusable
``--out`` and bad ``--env-arg``/``--learner-arg`` settings end in one line on stderr and exit
code 2, before anything is written. ``--env-arg``/``--learner-arg`` values are Python
literals (``epochs=1``, ``net_arch=(32,32)``, ``device=cpu``: anything else is taken as a
string); they are compared as JSON, so ``(32,32)`` and ``[32, 32]`` are the same setting.
"""
from __future__ import annotations

import argparse
import ast
import json
import shutil
from pathlib import Path
from typing import Any

from ma2ml import cli
from ma2ml.envs import make_parallel
from ma2ml.runfolder import (BEST_FILE, CHECKPOINT_FILE, RESULTS_FILE, RUN_FILE, RUN_ID, STORE_FILE, TIMINGS_FILE,
                             RunFolderError, append_lines, atomic_write_bytes, atomic_write_json, atomic_write_lines,
                             check_writable_folder, folder_lock, load_checkpoint, log_rows, make_folder, read_json,
                             result_row)

DEFAULT_ENV = "ma2ml/AutoML-Digits-v0"
DEFAULT_LEARNER = "ma2ml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search pipelines with one learner on a registered env",
                       description="Run a learner on a registered env; write results.jsonl, timings.jsonl, best.json.")
    p.add_argument("--env", default=DEFAULT_ENV,
                   help=f"registered PettingZoo id (default {DEFAULT_ENV}; see `ma2ml list`)")
    p.add_argument("--learner", default=DEFAULT_LEARNER,
                   help=f"learner name (default {DEFAULT_LEARNER}; see `ma2ml list`) or module:Class of your own")
    p.add_argument("--budget", type=int, default=64, help="evaluations in all (default 64)")
    p.add_argument("--batch-size", type=int, default=8, help="evaluations per batch (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the env and the learner (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the env (repeatable), e.g. epochs=1")
    p.add_argument("--learner-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="config field of the learner (repeatable), e.g. kl_coef=0.05")
    add_repeats_option(p)
    cli.COMMANDS["search"] = run


def add_repeats_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-repeats", action="store_const", const=False, default=None, dest="no_repeat",
                   help="let the learner propose pipelines it has already evaluated (default: the no-repeat "
                        "protocol, every proposal a new pipeline; a resumed run keeps its own setting)")


LEGACY_SETTINGS = {"no_repeat": False}
"""Settings of run folders written before the setting existed (runs before December 2026 allowed repeats)."""


def parse_settings(pairs: list[str], option: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: literal v}``; one ``CliError`` for a malformed pair."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise cli.CliError(f"{option} expects KEY=VALUE with KEY a name, got {_shorten(pair)}")
        if len(text) > MAX_SETTING_CHARS:
            raise cli.CliError(f"{option} {key}= is {len(text):,} characters long; values may have at most "
                               f"{MAX_SETTING_CHARS:,}")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError):
            out[key] = text
        except (MemoryError, RecursionError):  # deeply nested or operator chains the parser cannot hold
            raise cli.CliError(f"{option} {key}= is nested too deeply to read: {_shorten(text)}") from None
    return out


MAX_SETTING_CHARS = 10_000
"""Longest ``--env-arg``/``--learner-arg`` value (a setting is a number, a name or a short list)."""


def _shorten(text: Any, limit: int = 60) -> str:
    """``repr(text)``, cut to about ``limit`` characters."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit - 3] + "..."


MAX_SEED = 2**32 - 1
"""Largest accepted seed (what numpy and torch both take)."""
MAX_BUDGET = 10_000_000
"""Largest accepted budget (evaluations in one run)."""
MAX_BATCH = 100_000
"""Largest accepted batch (a batch's proposals are made at once)."""
SEARCH_ENV_ARGS = ("store", "run_id")
"""Env arguments ``ma2ml search`` sets itself (the run folder's store)."""


def check_run_args(learner: str, budget: int, batch_size: int, seed: int = 0) -> None:
    """One ``CliError`` for an unknown learner or a budget, batch size or seed out of range."""
    from ma2ml.learners import learner_spec

    try:
        learner_spec(learner)  # a registered name, or "module:Class" (imported now)
    except ValueError as exc:
        raise cli.CliError(str(exc)) from None
    for name, value, top in (("budget", budget, MAX_BUDGET), ("batch-size", batch_size, MAX_BATCH)):
        if not 1 <= value <= top:
            raise cli.CliError(f"--{name} must be an integer in 1..{top:,}, got {value}")
    check_seed(seed, "--seed")


def check_seed(seed: int, option: str) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise cli.CliError(f"{option} must be an integer in 0..{MAX_SEED} (2**32 - 1), got {seed}")


def normalized(settings: dict[str, Any], option: str) -> dict[str, Any]:
    """``settings`` as they read back from JSON (tuples become lists), or one ``CliError`` naming the key."""
    for key, value in settings.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise cli.CliError(f"{option} {key} = {_shorten(value)} is invalid: values must be finite numbers, "
                               f"strings, lists, dicts, True, False or None ({exc})") from None
    return json.loads(json.dumps(settings, allow_nan=False))


def _resume_state(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint of an earlier run in ``out`` (None: a new run); refuses other settings.

    Every setting but the budget must match; the budget may grow (extending a finished run)
    or shrink down to the evaluations already made.
    """
    run_file = out / RUN_FILE
    if not run_file.exists():
        if (out / RESULTS_FILE).exists():
            raise cli.CliError(f"{out} holds {RESULTS_FILE} but no {RUN_FILE}; choose a new --out folder")
        return None
    stored = read_json(run_file, "run settings")
    if not isinstance(stored, dict):
        raise RunFolderError(f"run settings {run_file} is not a JSON object; choose a new --out folder")
    stored = {**LEGACY_SETTINGS, **stored}
    if settings["no_repeat"] is None:  # not given: the run keeps its own protocol
        settings["no_repeat"] = stored["no_repeat"]
    diff = sorted(k for k in settings if k != "budget" and stored.get(k) != settings[k])
    if diff:
        raise cli.CliError(f"{out} holds a run with other settings ({', '.join(diff)} differ: "
                           f"{ {k: stored.get(k) for k in diff} }); rerun with those or choose a new --out folder")
    path = out / CHECKPOINT_FILE
    state = load_checkpoint(path) if path.exists() else {"evaluations": 0}
    if settings["budget"] < state["evaluations"]:
        raise cli.CliError(f"{out} holds {state['evaluations']} evaluations already; --budget must be at least "
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


def _rebuild_logs(out: Path, env: Any, agents: list[str], stored: list[Any],
                  batch_starts: list[int]) -> dict[str, Any] | None:
    """Rewrite ``results.jsonl``/``timings.jsonl`` from the stored evaluations; returns the best row."""
    results, timings = log_rows(stored, agents, env.reward, batch_starts)
    atomic_write_lines(out / RESULTS_FILE, results)
    atomic_write_lines(out / TIMINGS_FILE, timings)
    return max(results, key=lambda row: row["reward"], default=None)  # ties: the earliest


def _save_checkpoint(out: Path, learner: Any, env: Any, batch_starts: list[int], wall: float) -> None:
    """Learner state, the env's generator, the batch starts and the wall time, written atomically after a batch
    (the best row is not kept: it is rebuilt from the store with the logs)."""
    import io

    import torch

    state = {"learner": learner.state_dict(), "np_random": env.np_random.bit_generator.state,
             "evaluations": learner.num_evaluations, "batch_starts": list(batch_starts), "wall_seconds": wall}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(out / CHECKPOINT_FILE, buffer.getvalue())


def search(env_id: str, env_kwargs: dict[str, Any], learner_name: str, learner_kwargs: dict[str, Any],
           budget: int, batch_size: int, seed: int, out: Path, progress: bool = True,
           no_repeat: bool | None = None) -> dict[str, Any]:
    """Run one learner on one env, writing the run folder ``out`` (:mod:`ma2ml.runfolder`); returns
    the best row (with the run's settings and the evaluation count).

    Every evaluation is stored in ``out/evals.sqlite`` before the learner hears of it, and
    the learner is checkpointed after every batch, so a search interrupted at any point
    continues when run again with the same ``out`` and settings: no finished evaluation is
    lost or trained twice. A finished run continues to a larger ``budget``. The folder is
    locked while the search runs: a second process on it gets one ``RunFolderError``.

    ``no_repeat`` is the learners' no-repeat protocol (:mod:`ma2ml.agents.base`), recorded in
    ``run.json``; None: on for a new run, a resumed run keeps its own.
    """
    from ma2ml.learners import learner_config

    check_env_args(env_kwargs)
    learner_config(learner_name, **learner_kwargs)  # every field's type and range, before anything is made
    settings = {"env": env_id, "env_args": normalized(env_kwargs, "--env-arg"), "learner": learner_name,
                "learner_args": normalized(learner_kwargs, "--learner-arg"), "budget": budget,
                "batch_size": batch_size, "seed": seed, "no_repeat": no_repeat}
    out = check_writable_folder(out)
    first_new = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    make_folder(out)
    with folder_lock(out):
        try:
            env, learner, state, stored = _open_run(out, settings, env_id, env_kwargs, learner_name,
                                                    learner_kwargs, seed)
        except BaseException:
            if first_new is not None:  # bad input leaves nothing behind: not even the parents it made
                shutil.rmtree(first_new, ignore_errors=True)
            raise
        return _run(out, settings, env, learner, state, stored, progress)


def check_env_args(env_kwargs: dict[str, Any]) -> None:
    """One ``CliError`` when ``--env-arg`` sets what a run folder decides (its store and run id)."""
    if set(env_kwargs) & set(SEARCH_ENV_ARGS):
        raise cli.CliError(f"--env-arg {sorted(set(env_kwargs) & set(SEARCH_ENV_ARGS))} is set by ma2ml itself "
                           f"(the store is {STORE_FILE} in each run folder); leave it out")


def _open_run(out: Path, settings: dict[str, Any], env_id: str, env_kwargs: dict[str, Any], learner_name: str,
              learner_kwargs: dict[str, Any], seed: int) -> tuple[Any, Any, dict[str, Any], list[Any]]:
    """The env, the learner (restored when resuming), the resume state and the stored evaluations
    below the checkpoint (checked to be all there)."""
    from ma2ml.learners import make_learner

    state = _resume_state(out, settings) or {"evaluations": 0}
    if settings["no_repeat"] is None:  # a new run
        settings["no_repeat"] = True
    done = state["evaluations"]
    store = out / STORE_FILE
    if done and (not store.exists() or store.stat().st_size == 0):
        raise RunFolderError(f"{store} is {'missing' if not store.exists() else 'empty'} but the checkpoint records "
                             f"{done} evaluations; restore the store from a copy, or choose a new --out")
    env = make_parallel(env_id, **env_kwargs, store=str(store), run_id=RUN_ID)
    try:
        env.reset(seed=seed)
        learner = make_learner(learner_name, env, seed=seed, **learner_kwargs)
        if "learner" in state:
            learner.load_state_dict(state["learner"])
            env.np_random.bit_generator.state = state["np_random"]
        stored = [e for e in env.run_log.records() if e.index < done]
        _check_store(out, stored, done)
        env.run_log.seek(done)
    except BaseException:
        env.close()
        raise
    atomic_write_json(out / RUN_FILE, settings)
    return env, learner, state, stored


def _run(out: Path, settings: dict[str, Any], env: Any, learner: Any, state: dict[str, Any], stored: list[Any],
         progress: bool) -> dict[str, Any]:
    import time

    import numpy as np
    from tqdm import tqdm

    done, budget, agents = state["evaluations"], settings["budget"], list(learner.agents)
    batch_starts = list(state.get("batch_starts") or range(0, done, settings["batch_size"]))
    best = _rebuild_logs(out, env, agents, stored, batch_starts)
    start = time.perf_counter()
    bar = tqdm(total=budget, initial=done, desc=f"{settings['learner']} on {settings['env']}", unit="eval",
               disable=not progress, dynamic_ncols=True)
    env.run_log.on_record = lambda _index, _record: bar.update(1)  # moves per evaluation, with an ETA
    try:
        with open(out / RESULTS_FILE, "a", encoding="utf-8") as results, \
                open(out / TIMINGS_FILE, "a", encoding="utf-8") as timings:
            def record(batch: Any) -> None:
                nonlocal best
                batch_starts.append(batch.start)
                rows = [result_row(batch.start + k, batch.index, {a: np.asarray(actions[a]).tolist() for a in agents},
                                   rec, reward)
                        for k, (actions, reward, rec) in enumerate(zip(batch.actions, batch.rewards, batch.records,
                                                                       strict=True))]
                append_lines(results, out / RESULTS_FILE, [result for result, _ in rows])
                append_lines(timings, out / TIMINGS_FILE, [timing for _, timing in rows])
                for result, _ in rows:
                    if best is None or result["reward"] > best["reward"]:
                        best = result
                wall = time.perf_counter() - start
                _save_checkpoint(out, learner, env, batch_starts, wall)
                _write_best(out, env, agents, best, settings, wall, learner.num_evaluations)
                bar.set_postfix(best=f"{best['reward']:.4f}")

            if learner.num_evaluations < budget:
                learner.learn(env, budget, settings["batch_size"], callback=record, no_repeat=settings["no_repeat"])
            elif best is not None:  # a finished run: make sure best.json says so
                _write_best(out, env, agents, best, settings, state.get("wall_seconds", 0.0), learner.num_evaluations)
    finally:
        bar.close()
        learner.close()
        env.close()
    actions = {a: np.asarray(best["tokens"][a]) for a in agents}
    return {**best, "description": env.describe(actions), "evaluations": learner.num_evaluations}


def _write_best(out: Path, env: Any, agents: list[str], best: dict[str, Any], settings: dict[str, Any],
                wall: float, evaluations: int) -> None:
    """``best.json``, atomically."""
    import numpy as np

    actions = {a: np.asarray(best["tokens"][a]) for a in agents}
    atomic_write_json(out / BEST_FILE, {**best, "description": env.describe(actions), "settings": settings,
                                        "wall_seconds": wall, "evaluations": evaluations})


def run(args: argparse.Namespace) -> None:
    check_run_args(args.learner, args.budget, args.batch_size, args.seed)
    out = check_writable_folder(args.out)
    env_kwargs = parse_settings(args.env_arg, "--env-arg")
    learner_kwargs = parse_settings(args.learner_arg, "--learner-arg")
    best = search(args.env, env_kwargs, args.learner, learner_kwargs, args.budget, args.batch_size, args.seed, out,
                  no_repeat=args.no_repeat)
    print(f"best reward {best['reward']:.4f} (evaluation {best['index']}, batch {best['batch']}, "
          f"status {best['status']}, val_acc {best['metrics']['val_acc']:.4f}, "
          f"FLOPs {best['metrics']['flops']:,} multiply-adds)")
    print(best["description"])
    print(f"\nwrote {out}/:")
    for name, what in ((BEST_FILE, "the best pipeline, its tokens and the run's settings"),
                       (RESULTS_FILE, f"all {best['evaluations']} evaluations, one JSON row each"),
                       (TIMINGS_FILE, "wall-clock seconds of each evaluation"),
                       (STORE_FILE, "the evaluation store (SQLite): the same command resumes or extends the run"),
                       (CHECKPOINT_FILE, "the learner's state after the last batch")):
        print(f"  {name:14s} {what}")
    print(f"next: ma2ml train {out / BEST_FILE} --epochs 30   "
          "# train the found pipeline at full budget on train+val, report test accuracy")
