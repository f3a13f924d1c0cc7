"""``ma2ml search``: run one learner on one registered env and record every evaluation.

    ma2ml search --env ma2ml/AutoML-Digits-v0 --learner ma2ml --budget 64 --batch-size 8 \\
                 --seed 0 --out runs/digits-ma2ml [--env-arg epochs=1 ...] [--learner-arg kl_coef=0.05 ...]

Writes, in ``--out``:

* ``results.jsonl``: one JSON object per evaluation, in order: ``index``, ``batch``,
  ``tokens`` (agent -> token list), ``pipeline`` (the decoded choices), ``reward``,
  ``status`` and ``metrics`` (val_acc, test_acc, flops, params, curve, seed, error). It holds
  no wall-clock figure, so the same seed gives a byte-identical file on CPU;
* ``timings.jsonl``: ``index`` and ``train_seconds`` of each evaluation (wall clock);
* ``best.json``: the best evaluation so far (rewritten after each batch) with its pipeline
  in human terms, plus the run's settings;

* ``evals.sqlite``: the evaluation store (``ma2ml.envs.store``): every evaluation is written
  there, one transaction each, before the learner hears of it;
* ``checkpoint.pt``: the learner's state and the env's generator after the last full batch;
  ``run.json``: the run's settings;

and prints the best pipeline (``env.describe``) at the end. Running the same command again on
an ``--out`` that holds an interrupted run resumes it: the learner is restored from its
checkpoint, evaluations stored since are answered from the store, and none is lost or
trained twice; other settings on the same ``--out`` are refused. A progress bar shows the best
reward so far. Unknown env or learner names, non-positive budgets or batch sizes and bad
``--env-arg``/``--learner-arg`` settings end in one line on stderr and exit code 2, before
anything is written. ``--env-arg``/``--learner-arg`` values are Python literals
(``epochs=1``, ``net_arch=(32,32)``, ``device=cpu``: anything else is taken as a string).
"""
from __future__ import annotations

import argparse
import ast
import json
import shutil
from pathlib import Path
from typing import Any

from ma2ml import cli

DEFAULT_ENV = "ma2ml/AutoML-Digits-v0"
DEFAULT_LEARNER = "ma2ml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search pipelines with one learner on a registered env",
                       description="Run a learner on a registered env; write results.jsonl, timings.jsonl, best.json.")
    p.add_argument("--env", default=DEFAULT_ENV,
                   help=f"registered PettingZoo id (default {DEFAULT_ENV}; see `ma2ml list`)")
    p.add_argument("--learner", default=DEFAULT_LEARNER,
                   help=f"learner name (default {DEFAULT_LEARNER}; see `ma2ml list`)")
    p.add_argument("--budget", type=int, default=64, help="evaluations in all (default 64)")
    p.add_argument("--batch-size", type=int, default=8, help="evaluations per batch (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the env and the learner (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the env (repeatable), e.g. epochs=1")
    p.add_argument("--learner-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="config field of the learner (repeatable), e.g. kl_coef=0.05")
    cli.COMMANDS["search"] = run


def parse_settings(pairs: list[str], option: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: literal v}``; one ``CliError`` for a malformed pair."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise cli.CliError(f"{option} expects KEY=VALUE with KEY a name, got {pair!r}")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    """A registered parallel env; an unknown id or bad ``--env-arg`` is one ``ValueError``."""
    from ma2ml.envs import make_parallel

    return make_parallel(env_id, **kwargs)


def evaluation_rows(batch: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(results row, timings row) of each evaluation of a batch."""
    rows = []
    for k, (actions, reward, record) in enumerate(zip(batch.actions, batch.rewards, batch.records, strict=True)):
        index = batch.start + k
        metrics = record.to_dict()
        seconds = metrics.pop("train_seconds")
        pipeline = metrics.pop("pipeline")
        status = metrics.pop("status")
        result = {"index": index, "batch": batch.index, "tokens": {a: t.tolist() for a, t in actions.items()},
                  "pipeline": pipeline, "reward": reward, "status": status, "metrics": metrics}
        rows.append((result, {"index": index, "train_seconds": seconds}))
    return rows


def check_run_args(learner: str, budget: int, batch_size: int) -> None:
    """One ``CliError`` for an unknown learner or a non-positive budget / batch size."""
    from ma2ml.agents import learner_names

    if learner not in learner_names():
        raise cli.CliError(f"unknown learner {learner!r}; registered learners are {learner_names()}")
    for name, value in (("budget", budget), ("batch-size", batch_size)):
        if value < 1:
            raise cli.CliError(f"--{name} must be a positive integer, got {value}")


STORE_FILE = "evals.sqlite"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"
RUN_ID = "search"


def _keep_lines(path: Path, n: int) -> None:
    """Truncate a JSON-lines file to its first ``n`` lines (rows past a checkpoint are rewritten)."""
    if path.exists():
        lines = path.read_text().splitlines(keepends=True)[:n]
        path.write_text("".join(lines))


def _save_checkpoint(out: Path, learner: Any, env: Any, best: dict[str, Any] | None) -> None:
    """Learner state, the env's generator and the best row, written atomically after a batch."""
    import os

    import torch

    state = {"learner": learner.state_dict(), "np_random": env.np_random.bit_generator.state,
             "evaluations": learner.num_evaluations, "best": best}
    tmp = out / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / CHECKPOINT_FILE)


def _resume_state(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint of an interrupted run in ``out`` (None: a new run); refuses other settings."""
    import torch

    run_file = out / RUN_FILE
    if not run_file.exists():
        if (out / "results.jsonl").exists():
            raise cli.CliError(f"{out} holds results.jsonl but no {RUN_FILE}; choose a new --out folder")
        return None
    stored = json.loads(run_file.read_text())
    if stored != settings:
        diff = sorted(k for k in settings if stored.get(k) != settings[k])
        raise cli.CliError(f"{out} holds a run with other settings ({', '.join(diff)} differ: "
                           f"{ {k: stored.get(k) for k in diff} }); rerun with those or choose a new --out folder")
    path = out / CHECKPOINT_FILE
    return torch.load(path, weights_only=False) if path.exists() else {"evaluations": 0, "best": None}


def search(env_id: str, env_kwargs: dict[str, Any], learner_name: str, learner_kwargs: dict[str, Any],
           budget: int, batch_size: int, seed: int, out: Path, progress: bool = True) -> dict[str, Any]:
    """Run one learner on one env, writing ``results.jsonl``, ``timings.jsonl`` and ``best.json``
    in ``out``; returns the best row (with the run's settings and the evaluation count).

    Every evaluation is stored in ``out/evals.sqlite`` before the learner hears of it, and
    the learner is checkpointed after every batch, so a search interrupted at any point
    continues when run again with the same ``out`` and settings: no finished evaluation is
    lost or trained twice.
    """
    import time

    import numpy as np
    from tqdm import tqdm

    from ma2ml.agents import make_learner

    settings = {"env": env_id, "env_args": env_kwargs, "learner": learner_name, "learner_args": learner_kwargs,
                "budget": budget, "batch_size": batch_size, "seed": seed}
    state = _resume_state(out, settings)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        env = make_env(env_id, {**env_kwargs, "store": str(out / STORE_FILE), "run_id": RUN_ID})
        env.reset(seed=seed)
        learner = make_learner(learner_name, env, seed=seed, **learner_kwargs)
    except BaseException:
        if created:  # bad input leaves nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    (out / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    best: dict[str, Any] | None = None
    done = 0
    if state is not None:
        best, done = state["best"], state["evaluations"]
        if "learner" in state:
            learner.load_state_dict(state["learner"])
            env.np_random.bit_generator.state = state["np_random"]
        env.run_log.seek(done)
    _keep_lines(out / "results.jsonl", done)
    _keep_lines(out / "timings.jsonl", done)
    start = time.perf_counter()
    bar = tqdm(total=budget, initial=done, desc=f"{learner_name} on {env_id}", unit="eval", disable=not progress)
    try:
        with open(out / "results.jsonl", "a") as results, open(out / "timings.jsonl", "a") as timings:
            def record(batch: Any) -> None:
                nonlocal best
                for result, timing in evaluation_rows(batch):
                    results.write(json.dumps(result) + "\n")
                    timings.write(json.dumps(timing) + "\n")
                    if best is None or result["reward"] > best["reward"]:
                        best = result
                results.flush()
                timings.flush()
                _save_checkpoint(out, learner, env, best)
                actions = {a: best["tokens"][a] for a in learner.agents}
                summary = {**best, "description": env.describe(actions), "settings": settings,
                           "wall_seconds": time.perf_counter() - start, "evaluations": learner.num_evaluations}
                (out / "best.json").write_text(json.dumps(summary, indent=2) + "\n")
                bar.update(len(batch.rewards))
                bar.set_postfix(best=f"{best['reward']:.4f}")

            if learner.num_evaluations < budget:
                learner.learn(env, budget, batch_size, callback=record)
    finally:
        bar.close()
        learner.close()
        env.close()
    actions = {a: np.asarray(best["tokens"][a]) for a in learner.agents}
    return {**best, "description": env.describe(actions), "evaluations": learner.num_evaluations}


def run(args: argparse.Namespace) -> None:
    check_run_args(args.learner, args.budget, args.batch_size)
    out = Path(args.out)
    env_kwargs = parse_settings(args.env_arg, "--env-arg")
    learner_kwargs = parse_settings(args.learner_arg, "--learner-arg")
    best = search(args.env, env_kwargs, args.learner, learner_kwargs, args.budget, args.batch_size, args.seed, out)
    print(f"best reward {best['reward']:.4f} (evaluation {best['index']}, batch {best['batch']}, "
          f"status {best['status']}, val_acc {best['metrics']['val_acc']:.4f})")
    print(best["description"])
    print(f"wrote {out / 'results.jsonl'} ({best['evaluations']} evaluations), {out / 'timings.jsonl'}, "
          f"{out / 'best.json'}")
