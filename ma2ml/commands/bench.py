"""``ma2ml bench``: build the ``digits`` benchmark table and print its statistics.

    ma2ml bench build --out runs/bench/digits_bench.npz --workers 2   # resumable
    ma2ml bench compact --raw runs/bench/digits_bench.jsonl --out ma2ml/bench/data/digits_bench.npz --force
    ma2ml bench info [--table PATH]
    ma2ml bench info --bench hard [--table PATH] [--comparison PER_RUN_JSON]   # the hard tier
    ma2ml bench suites [--suite tables-v0[:test]] [--properties]               # suites of tasks (ma2ml.suites)

``build`` and ``compact`` check their arguments before anything is trained or written: an
existing ``--out`` needs ``--force``; ``--out`` must be a writable ``.npz`` path other than
``--raw``; ``--workers`` must be in 1..64 and ``--limit`` >= 1. A refusal is one line and exit code 2,
and leaves no file or folder behind.
"""
from __future__ import annotations

import argparse
from typing import Any
import os
import time
from pathlib import Path

from ma2ml.commands.common import CliError, Handler


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(raw, out) of ``build`` / ``compact``, checked; creates nothing."""
    from ma2ml.bench.results import check_table_path

    for flag in ("out", "raw"):
        if getattr(args, flag) == "":
            raise CliError(f"--{flag} is empty")
    out = check_table_path(args.out, args.raw)
    raw = Path(args.raw) if args.raw is not None else out.with_suffix(".jsonl")
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it")
    return raw, out


MAX_BUILD_WORKERS = 64
"""Most worker processes ``bench build`` starts (each trains with one torch thread)."""


def _cmd_build(args: argparse.Namespace) -> None:
    import torch

    from ma2ml.bench.digits_build import BUILD_THREADS, compact, run_build

    if not 1 <= args.workers <= MAX_BUILD_WORKERS:
        raise CliError(f"--workers must be an integer in 1..{MAX_BUILD_WORKERS} (worker processes of one "
                       f"torch thread each; this machine has {os.cpu_count()} cores), got {args.workers}")
    raw, out = _paths(args)
    torch.set_num_threads(BUILD_THREADS)
    start = time.perf_counter()
    total = run_build(raw, workers=args.workers, limit=args.limit, progress=not args.quiet)
    print(f"{total} evaluations in {raw} (this run: {time.perf_counter() - start:.0f} s)")
    print(f"table written to {compact(raw, out)}")


def _cmd_compact(args: argparse.Namespace) -> None:
    from ma2ml.bench.digits_build import compact

    raw, out = _paths(args)
    print(f"table written to {compact(raw, out)}")


HARD_COMPARISON = Path("benchmarks") / "results" / "compare_digitshard" / "per_run.json"
"""The hard tier's committed default comparison (relative to a checkout), the source of property 5."""

POWER_BUDGETS = (50, 100, 300)
"""The budgets of the hard tier's power table (its property 5)."""


def _cmd_info(args: argparse.Namespace) -> None:
    if args.bench == "hard":
        _hard_info(args)
        return
    if args.bench != "digits":
        _suite_info(args)
        return
    from ma2ml.bench.properties import format_stats, table_stats
    from ma2ml.bench.table import DIGITS_BENCH, TABLE_PATH, load_table

    path = Path(args.table) if args.table else TABLE_PATH
    table = load_table(path)
    print(format_stats(table_stats(table), path))
    print(_identity(table, DIGITS_BENCH, path))


def _identity(table: Any, bench: Any, path: Path) -> str:
    """The table's content hash (and whether it is the frozen packaged file) and its build platform."""
    frozen = ("the frozen packaged table" if table.sha256 == bench.sha256 else
              "not the packaged table" if bench.sha256 else "not frozen (still being built)")
    built = table.meta.get("build_platform")
    where = ", ".join(f"{k} {v}" for k, v in built.items()) if isinstance(built, dict) else \
        "not recorded (built before the record, or on several platforms)"
    return f"content: sha256 {table.sha256} ({frozen})\nbuilt on: {where}"


def _hard_info(args: argparse.Namespace) -> None:
    """Properties 1-4 from the hard table, 5 from the committed comparison's ``per_run.json``."""
    import json

    from ma2ml.bench.hard.tables import HARD_BENCH
    from ma2ml.bench.properties import format_hard_stats, hard_stats
    from ma2ml.report import format_budget_power, power_at_budgets

    path = Path(args.table) if args.table else HARD_BENCH.path
    comparison = Path(args.comparison) if args.comparison else HARD_COMPARISON
    power = [f"   no comparison at {comparison}: run `bash benchmarks/compare_hard.sh` from a checkout "
             "(or pass --comparison PATH/per_run.json)"]
    if comparison.is_file():  # checked before anything is printed
        try:
            per_run = json.loads(comparison.read_text())
            power = [f"   {comparison}: {len({r['learner'] for r in per_run['runs']})} learners x "
                     f"{len({r['seed'] for r in per_run['runs']})} seeds",
                     *format_budget_power(power_at_budgets(per_run, POWER_BUDGETS), per_run["score"])]
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise CliError(f"{comparison} is not a per_run.json of a comparison with budget points "
                           f"{list(POWER_BUDGETS)} ({type(exc).__name__}: {exc})") from None
    print(format_hard_stats(hard_stats(path), path))
    from ma2ml.bench.table import load_table

    print(_identity(load_table(path, HARD_BENCH), HARD_BENCH, path))
    print("5. power (seeds per learner for 80% power, from the default comparison)")
    print("\n".join(power))


def _suite_info(args: argparse.Namespace) -> None:
    """A suite table's properties 1-4 (under its own reward) and its identity."""
    from ma2ml.bench.hard.tables import SUITE_BENCHES, SUITE_REWARD_ARGS, table_reward
    from ma2ml.bench.properties import format_hard_stats, hard_stats
    from ma2ml.bench.table import load_table

    bench = SUITE_BENCHES[args.bench]
    path = Path(args.table) if args.table else bench.path
    if args.comparison:
        raise CliError(f"--comparison applies to --bench hard only, not to {args.bench}")
    print(format_hard_stats(hard_stats(path, table_reward(SUITE_REWARD_ARGS[args.bench]), bench=bench), path))
    print(_identity(load_table(path, bench), bench, path))


def _cmd_suites(args: argparse.Namespace) -> None:
    """The suites and their tasks; ``--properties``: each task's properties and the rank correlations."""
    from ma2ml.suites import SUITES, get_suite, rank_correlations, task_properties

    chosen = [get_suite(args.suite)] if args.suite else [(suite, None) for suite in SUITES.values()]
    for suite, which in chosen:
        tasks = suite.split(which)
        print(f"{suite.name}{':' + which if which else ''}: {suite.description}")
        for task in tasks:
            settings = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in task.env_args.items())
            print(f"  {task.split:4s}  {task.name:20s} {task.env} budget {task.budget}"
                  f"{' (' + settings + ')' if settings else ''}: {task.what}")
        if not args.properties:
            continue
        print("\n| task | split | pipelines | optimum | budget | random search's true regret | random evals to the "
              "top 0.1% | noise ratio |\n|---|---|---|---|---|---|---|---|")
        for task in tasks:
            q = task_properties(task)
            print(f"| {q['task']} | {q['split']} | {q['pipelines']:,} | {q['optimum']:.4f} | {q['budget']} | "
                  f"{q['random_regret']:.4f}{' (Monte Carlo)' if q['noisy'] else ''} | {q['random_evals_to_top']:.0f} | "
                  f"{q['noise_ratio']:.2f} |")
        names = {t.name for t in tasks}
        pairs = {k: v for k, v in rank_correlations(suite).items() if set(k) <= names}
        if pairs:
            print("\nSpearman of the ground truth between tasks on the same table (they share its trainings):")
            for (a, b), rho in pairs.items():
                print(f"  {a} ~ {b}: {rho:.3f}")


def _dispatch(args: argparse.Namespace) -> None:
    {"build": _cmd_build, "compact": _cmd_compact, "info": _cmd_info, "suites": _cmd_suites}[args.bench_command](args)


def register(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("bench", help="build the digits benchmark table, or print its statistics")
    bsub = p.add_subparsers(dest="bench_command", metavar="ACTION")
    bsub.required = True
    b = bsub.add_parser("build", help="train every pipeline of the table (resumable), then compact it")
    b.add_argument("--out", required=True, help="the compact table to write (.npz)")
    b.add_argument("--raw", help="the resumable JSON-lines results file (default: --out with .jsonl)")
    b.add_argument("--workers", type=int, default=2, help="worker processes, one torch thread each (>= 1)")
    b.add_argument("--limit", type=int, help="stop after this many evaluations of the build order (>= 1; a slice)")
    b.add_argument("--force", action="store_true", help="overwrite an existing --out")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    c = bsub.add_parser("compact", help="write the compact table from a raw results file")
    c.add_argument("--raw", required=True, help="the JSON-lines results file of a build")
    c.add_argument("--out", required=True, help="the compact table to write (.npz)")
    c.add_argument("--force", action="store_true", help="overwrite an existing --out")
    i = bsub.add_parser("info", help="print a table's statistics (--bench hard: the hard tier's properties 1-5 against their thresholds)")
    i.add_argument("--bench", choices=("digits", "hard", "mnist", "shapes"), default="digits",
                   help="which table: digits (ma2ml/AutoML-DigitsBench-v0), the hard tier (ma2ml/AutoML-DigitsHard-v0) "
                        "or a suite table, mnist / shapes (ma2ml/AutoML-MnistBench-v0, ShapesBench-v0)")
    i.add_argument("--table", help="a table file (default: the packaged one)")
    i.add_argument("--comparison", help="with --bench hard: the per_run.json of the comparison whose power "
                                        f"table to print (default: {HARD_COMPARISON})")
    s = bsub.add_parser("suites", help="list the benchmark suites (named, versioned task lists with a dev/test split)")
    s.add_argument("--suite", help="one suite, NAME or NAME:dev / NAME:test (default: every suite)")
    s.add_argument("--properties", action="store_true",
                   help="also compute each task's properties and the rank correlations between tasks (seconds)")
    return _dispatch
