"""``ma2ml compare``: run learners × seeds on one env and report them side by side.

    ma2ml compare --env ma2ml/AutoML-DigitsBench-v0 --learners ma2ml,random [--seeds 30] \\
                  --budget 300 --batch-size 10 --out runs/compare [--jobs 2] [--env-arg table_seed=0] \\
                  [--budgets 25,50,100,200]

Every run is an ``ma2ml search`` in ``DIR/runs/<learner>/seed<k>/`` (the same files); a
finished run is not rerun, an unfinished one resumes where it stopped (``ma2ml search``'s
resume), so an interrupted comparison resumes. Ctrl-C or SIGTERM stops every run at once: the
run workers ignore SIGINT and the parent kills them (a run folder survives a kill at any
moment), then the CLI prints its one "interrupted" line.

The comparison trusts no log. A run's numbers (rewards, pipelines, batches, training seconds)
come from its evaluation store, ``evals.sqlite``, and its checkpoint's batch starts
(:func:`ma2ml.runfolder.read_stored_run`), never from ``results.jsonl`` or ``timings.jsonl``:
a truncated, forged or reordered log changes nothing. A log that differs from the store is
rewritten from it, and one line on stderr says which file and where it differed. A run is
finished when its ``best.json`` and its checkpoint both report the full budget and its store
holds every one of those evaluations. Any other run is resumed (rerun from its store and
checkpoint): a store short of the budget gets its missing evaluations, and a store short of
what the run's checkpoint recorded (a store damaged, replaced or truncated) is refused by
``ma2ml search`` with one line naming it.
Every learner runs the same seeds (paired); ``--jobs`` spreads the learner × seed runs over
worker processes, each with one torch thread. The default seed count is 30 on envs whose
evaluator knows its ground truth (the benchmark table: cheap runs, and the differences are
small) and 10 elsewhere. Then ``DIR`` gets ``summary.md``, the figures, ``per_run.json``,
``marl_eval.json`` and ``wall_seconds.json`` (see :mod:`ma2ml.report`): regret at every
``--budgets`` point and the full budget, and, when the env knows them (the benchmark table),
simple regret to its optimum, evaluations to the top 1% and the true regret of each run's
recommended pipeline on the seed-averaged ground truth.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ma2ml import cli
from ma2ml.commands.search import (MAX_SEED, add_repeats_option, check_env_args, check_run_args, check_seed,
                                   parse_settings, search)
from ma2ml.envs import make_parallel
from ma2ml.runfolder import (BEST_FILE, RunFolderError, check_writable_folder, evaluations_done, folder_lock,
                             log_rows, make_folder, mend_logs, read_json, read_stored_run)

if TYPE_CHECKING:
    from ma2ml.report import Run, Tokens, Truth

MAX_SEEDS = 10_000
"""Most seeds per learner in one comparison."""
MAX_JOBS = 256
"""Most parallel processes."""
TRUTH_SEEDS = 30
"""Default seeds per learner on envs whose evaluator knows its ground truth (the benchmark table)."""
OTHER_SEEDS = 10
"""Default seeds per learner elsewhere (real training)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run learners x seeds on one env; write summary.md, figures, marl-eval JSON",
                       description="Run learners x seeds on one registered env and compare them.")
    p.add_argument("--env", default="ma2ml/AutoML-DigitsBench-v0", help="registered PettingZoo id")
    p.add_argument("--learners", required=True, help="comma-separated learner names (see `ma2ml list`)")
    p.add_argument("--seeds", type=int, default=None,
                   help=f"seeds per learner, the same for every learner (default {TRUTH_SEEDS} on envs that know "
                        f"their ground truth, the benchmark table; {OTHER_SEEDS} elsewhere)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--budget", type=int, default=300, help="evaluations per run (default 300)")
    p.add_argument("--batch-size", type=int, default=10, help="evaluations per batch (default 10)")
    p.add_argument("--top-k", type=int, default=10, help="k of the top-k figure (default 10)")
    p.add_argument("--budgets", default=None,
                   help="comma-separated budget points (evaluations) of the anytime tables; those below --budget "
                        "are kept and --budget is always added (default 25,50,100,200: "
                        "ma2ml.report.ANYTIME_BUDGETS)")
    p.add_argument("--jobs", type=int, default=1,
                   help="learner x seed runs in parallel processes, one torch thread each (default 1)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE", help="env keyword argument")
    add_repeats_option(p)
    cli.COMMANDS["compare"] = run


def run_dir(out: Path, learner: str, seed: int) -> Path:
    return out / "runs" / learner / f"seed{seed}"


def finished(path: Path, budget: int, batch_size: int) -> bool:
    """Whether a run is finished: its ``best.json`` and its checkpoint report ``budget`` evaluations and
    its store holds every one (an unreadable ``best.json``: not finished, the resume rewrites it)."""
    if evaluations_done(path) != budget:
        return False
    stored = read_stored_run(path, batch_size)
    return stored is not None and stored.complete(budget)


def _one_run(env_id: str, env_kwargs: dict[str, Any], learner: str, seed: int, budget: int, batch_size: int,
             path: str, no_repeat: bool | None) -> tuple[str, int]:
    from ma2ml.envs.core.threads import set_process_threads

    set_process_threads()  # a worker process: the CLI's thread policy
    search(env_id, env_kwargs, learner, {}, budget, batch_size, seed, Path(path), progress=False,
           no_repeat=no_repeat)
    return learner, seed


def load_run(path: Path, learner: str, seed: int, budget: int, batch_size: int, env: Any,
             truth: Truth | None = None) -> Run:
    """One finished run, read from its store (see the module docstring); its logs are rewritten where
    they differ from the store, with one line on stderr for each."""
    from ma2ml.report import Run

    with folder_lock(path):
        stored = read_stored_run(path, batch_size)
        if stored is None or not stored.complete(budget):
            raise RunFolderError(f"{path} holds {0 if stored is None else len(stored.evaluations)} of its {budget} "
                                 "evaluations; rerun the comparison to resume it")
        best = read_json(path / BEST_FILE, "best.json")
        wall = best.get("wall_seconds") if isinstance(best, dict) else None
        if not isinstance(wall, (int, float)):
            raise RunFolderError(f"{path / BEST_FILE} has no wall_seconds; rerun the comparison to rewrite it")
        results, timings = log_rows(stored.evaluations, env.possible_agents, env.reward, stored.batch_starts)
        for problem in mend_logs(path, results, timings):
            print(f"ma2ml compare: {problem}; rebuilt it from the run's store (the comparison reads the store)",
                  file=sys.stderr)
    return Run.from_records(learner, seed, results, wall, timings, truth)


def load_runs(out: Path, learners: list[str], seeds: list[int], budget: int, batch_size: int, env: Any,
              truth: Truth | None = None) -> list[Run]:
    """Every learner × seed run of a comparison, from the stores (:func:`load_run`)."""
    return [load_run(run_dir(out, learner, seed), learner, seed, budget, batch_size, env, truth)
            for learner in learners for seed in seeds]


@dataclass(frozen=True)
class Known:
    """What an env's evaluator knows about its rewards (all None for real training)."""

    optimum: float | None = None
    top1: float | None = None
    """The top-1% reward threshold."""
    truth: Truth | None = None
    """Pipelines -> their ground-truth rewards."""
    true_optimum: float | None = None
    """The best ground-truth reward."""


def known_reference(env: Any) -> tuple[float | None, float | None]:
    """(optimum, top-1% threshold) when the env's evaluator knows them (the benchmark table)."""
    reference = getattr(env.evaluator, "reference", None)
    return reference(env.reward_fn) if reference is not None else (None, None)


def known_truth(env: Any) -> tuple[Truth | None, float | None]:
    """(pipelines -> ground-truth rewards, the best ground truth) when the env's evaluator has a
    ``truth(reward_fn)`` array in pipeline order (the benchmark table's seed-averaged rewards)."""
    truth = getattr(env.evaluator, "truth", None)
    if truth is None:
        return None, None
    values = np.asarray(truth(env.reward_fn), dtype=float)
    layout = env.evaluator.layout

    def score(tokens: Sequence[Tokens]) -> np.ndarray:
        return values[layout.index(layout.join_rows(tokens))]

    return score, float(values.max())


def parse_budgets(text: str | None) -> list[int]:
    """``--budgets``: comma-separated positive integers (None: the report's default)."""
    if text is None:
        from ma2ml.report import ANYTIME_BUDGETS

        return list(ANYTIME_BUDGETS)
    try:
        budgets = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        budgets = []
    if not budgets or min(budgets) < 1:
        raise cli.CliError(f"--budgets must be comma-separated positive integers (evaluations), got {text!r}")
    return budgets


def run(args: argparse.Namespace) -> None:
    learners = [name.strip() for name in args.learners.split(",") if name.strip()]
    if not learners:
        raise cli.CliError("--learners needs at least one learner name")
    for learner in learners:
        check_run_args(learner, args.budget, args.batch_size)
    for name, top in (("seeds", MAX_SEEDS), ("jobs", MAX_JOBS), ("top_k", args.budget)):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= top:
            raise cli.CliError(f"--{name.replace('_', '-')} must be an integer in 1..{top:,}, got {value}")
    budgets = parse_budgets(args.budgets)
    check_seed(args.first_seed, "--first-seed")
    env_kwargs = parse_settings(args.env_arg, "--env-arg")
    check_env_args(env_kwargs)  # before the env is made: store= would create its file
    out = check_writable_folder(args.out)
    env = make_parallel(args.env, **env_kwargs)  # its reward reads the runs' stored records
    try:
        known = Known(*known_reference(env), *known_truth(env))
        n_seeds = args.seeds if args.seeds is not None else TRUTH_SEEDS if known.truth is not None else OTHER_SEEDS
        if args.first_seed + n_seeds - 1 > MAX_SEED:
            raise cli.CliError(f"--first-seed + --seeds - 1 must be at most {MAX_SEED}, "
                               f"got {args.first_seed + n_seeds - 1}")
        seeds = list(range(args.first_seed, args.first_seed + n_seeds))
        created = make_folder(out)
        try:
            with folder_lock(out, "comparison folder"):
                _compare(args, learners, seeds, budgets, env_kwargs, out, known, env)
        except BaseException:
            if created and not (out / "runs").exists():  # nothing ran: leave nothing behind
                shutil.rmtree(out, ignore_errors=True)
            raise
    finally:
        env.close()


def _compare(args: argparse.Namespace, learners: list[str], seeds: list[int], budgets: list[int],
             env_kwargs: dict[str, Any], out: Path, known: Known, env: Any) -> None:
    import os

    from tqdm import tqdm

    from ma2ml.runtime.pool import worker_initializer
    from ma2ml.report import write_report

    todo = [(learner, seed) for learner in learners for seed in seeds
            if not finished(run_dir(out, learner, seed), args.budget, args.batch_size)]
    bar = tqdm(total=len(learners) * len(seeds), initial=len(learners) * len(seeds) - len(todo), desc="runs", unit="run")
    pool = ProcessPoolExecutor(max_workers=args.jobs, initializer=worker_initializer, initargs=(os.getpid(),))
    try:
        futures = [pool.submit(_one_run, args.env, env_kwargs, learner, seed, args.budget, args.batch_size,
                               str(run_dir(out, learner, seed)), args.no_repeat) for learner, seed in todo]
        for future in as_completed(futures):
            learner, seed = future.result()
            bar.update(1)
            bar.set_postfix(last=f"{learner}/seed{seed}")
    except BaseException:  # an interrupt or a failed run: stop the others now (their run folders resume)
        _stop(pool)
        raise
    finally:
        bar.close()
    pool.shutdown()
    runs = load_runs(out, learners, seeds, args.budget, args.batch_size, env, known.truth)
    comparison = write_report(runs, out, args.env, known.optimum, known.top1,
                              k=args.top_k, budgets=budgets, true_optimum=known.true_optimum)
    print((out / "summary.md").read_text())
    print(f"{comparison.verdict().replace('**', '')} Wrote {out}/summary.md, figures, per_run.json and "
          "marl_eval.json.")


def _stop(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's workers (they ignore SIGINT: the parent stops them) and drop its queued runs.
    A run killed at any moment resumes from its store and checkpoint."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)
