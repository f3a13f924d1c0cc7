"""``ma2ml compare``: run learners × seeds on one env and report them side by side.

    ma2ml compare --env ma2ml/AutoML-DigitsBench-v0 --learners ma2ml,random --seeds 10 \\
                  --budget 300 --batch-size 10 --out runs/compare [--jobs 2] [--env-arg table_seed=0]

Every run is an ``ma2ml search`` in ``DIR/runs/<learner>/seed<k>/`` (the same files); a run
whose ``best.json`` reports the full budget is finished and is not rerun, an unfinished one
resumes where it stopped (``ma2ml search``'s resume), so an interrupted comparison resumes. Then ``DIR`` gets ``summary.md``,
the figures (``regret.png`` or ``best_so_far.png``, ``top<k>.png``, ``batch_scatter.png``)
``marl_eval.json`` and ``wall_seconds.json`` (see :mod:`ma2ml.report`). When the env knows its optimum (the
benchmark table), regret and evaluations-to-top-1% are reported too.
"""
from __future__ import annotations

import argparse
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ma2ml import cli
from ma2ml.commands.search import MAX_SEED, check_run_args, check_seed, parse_settings, search
from ma2ml.envs import make_parallel
from ma2ml.runfolder import (BEST_FILE, RunFolderError, check_writable_folder, evaluations_done, folder_lock,
                             make_folder, read_json, read_results)

MAX_SEEDS = 10_000
"""Most seeds per learner in one comparison."""
MAX_JOBS = 256
"""Most parallel processes."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run learners x seeds on one env; write summary.md, figures, marl-eval JSON",
                       description="Run learners x seeds on one registered env and compare them.")
    p.add_argument("--env", default="ma2ml/AutoML-DigitsBench-v0", help="registered PettingZoo id")
    p.add_argument("--learners", required=True, help="comma-separated learner names (see `ma2ml list`)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per learner: 0..N-1 (default 10)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--budget", type=int, default=300, help="evaluations per run (default 300)")
    p.add_argument("--batch-size", type=int, default=10, help="evaluations per batch (default 10)")
    p.add_argument("--top-k", type=int, default=10, help="k of the top-k figure (default 10)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE", help="env keyword argument")
    cli.COMMANDS["compare"] = run


def run_dir(out: Path, learner: str, seed: int) -> Path:
    return out / "runs" / learner / f"seed{seed}"


def finished(path: Path, budget: int) -> bool:
    """Whether a run folder's ``best.json`` reports the full budget (an unreadable one: not finished)."""
    return evaluations_done(path) == budget


def _one_run(env_id: str, env_kwargs: dict[str, Any], learner: str, seed: int, budget: int, batch_size: int,
             path: str) -> tuple[str, int]:
    from ma2ml.envs.core.threads import set_process_threads

    set_process_threads()  # a worker process: the CLI's thread policy
    search(env_id, env_kwargs, learner, {}, budget, batch_size, seed, Path(path), progress=False)
    return learner, seed


def load_runs(out: Path, learners: list[str], seeds: list[int]) -> list[Any]:
    from ma2ml.report import Run

    runs = []
    for learner in learners:
        for seed in seeds:
            path = run_dir(out, learner, seed)
            best = read_json(path / BEST_FILE, "best.json")
            wall = best.get("wall_seconds") if isinstance(best, dict) else None
            if not isinstance(wall, (int, float)):
                raise RunFolderError(f"{path / BEST_FILE} has no wall_seconds; rerun the comparison to rewrite it")
            runs.append(Run.from_records(learner, seed, read_results(path), wall))
    return runs


def known_reference(env: Any) -> tuple[float | None, float | None]:
    """(optimum, top-1% threshold) when the env's evaluator knows them (the benchmark table)."""
    reference = getattr(env.evaluator, "reference", None)
    return reference(env.reward_fn) if reference is not None else (None, None)


def run(args: argparse.Namespace) -> None:
    learners = [name.strip() for name in args.learners.split(",") if name.strip()]
    if not learners:
        raise cli.CliError("--learners needs at least one learner name")
    for learner in learners:
        check_run_args(learner, args.budget, args.batch_size)
    for name, top in (("seeds", MAX_SEEDS), ("jobs", MAX_JOBS), ("top_k", args.budget)):
        if not 1 <= getattr(args, name) <= top:
            raise cli.CliError(f"--{name.replace('_', '-')} must be an integer in 1..{top:,}, got {getattr(args, name)}")
    check_seed(args.first_seed, "--first-seed")
    if args.first_seed + args.seeds - 1 > MAX_SEED:
        raise cli.CliError(f"--first-seed + --seeds - 1 must be at most {MAX_SEED}, got {args.first_seed + args.seeds - 1}")
    env_kwargs = parse_settings(args.env_arg, "--env-arg")
    out = check_writable_folder(args.out)
    env = make_parallel(args.env, **env_kwargs)
    optimum, top1 = known_reference(env)
    env.close()
    created = make_folder(out)
    try:
        with folder_lock(out, "comparison folder"):
            _compare(args, learners, env_kwargs, out, optimum, top1)
    except BaseException:
        if created and not (out / "runs").exists():  # nothing ran: leave nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def _compare(args: argparse.Namespace, learners: list[str], env_kwargs: dict[str, Any], out: Path,
             optimum: float | None, top1: float | None) -> None:
    import os

    from tqdm import tqdm

    from ma2ml.envs.runtime.pool import die_with_parent
    from ma2ml.report import write_report

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    todo = [(learner, seed) for learner in learners for seed in seeds
            if not finished(run_dir(out, learner, seed), args.budget)]
    bar = tqdm(total=len(learners) * len(seeds), initial=len(learners) * len(seeds) - len(todo), desc="runs", unit="run")
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(_one_run, args.env, env_kwargs, learner, seed, args.budget, args.batch_size,
                               str(run_dir(out, learner, seed))) for learner, seed in todo]
        for future in as_completed(futures):
            learner, seed = future.result()
            bar.update(1)
            bar.set_postfix(last=f"{learner}/seed{seed}")
    bar.close()
    summaries = write_report(load_runs(out, learners, seeds), out, args.env, optimum, top1, k=args.top_k)
    print((out / "summary.md").read_text())
    best = max(summaries, key=lambda s: s.final_mean)
    print(f"best learner: {best.learner} (mean best reward {best.final_mean:.4f}); wrote {out}/summary.md, "
          f"figures and marl_eval.json")
