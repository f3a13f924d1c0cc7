"""``ma2ml compare``: run learners × seeds on one env and report them side by side.

    ma2ml compare --env ma2ml/AutoML-DigitsBench-v0 --learners ma2ml,random [--seeds 30] \\
                  --budget 300 --batch-size 10 --out runs/compare [--jobs 2] [--env-arg table_seed=0] \\
                  [--budgets 25,50,100,200] [--executor process --workers 2] [--learner-arg race_seeds=8]

    ma2ml compare --suite tables-v1:test --learners ma2ml,random,independent [--seeds 10] --out runs/suite

A thin wrapper over :class:`ma2ml.comparison.Comparison` (with ``--suite``, over
:class:`ma2ml.suite_comparison.SuiteComparison`: every task of the suite's split at its own budget,
ranked across tasks in ``suite.md``): every run is an ``ma2ml search`` in
``DIR/runs/<learner>/seed<k>/``; finished runs are not rerun, unfinished ones resume, and the
report (``summary.md``, the figures, ``per_run.json``, ``marl_eval.json``, ``wall_seconds.json``)
is read from the runs' stores, never from their logs. Ctrl-C or SIGTERM stops every run at once;
the CLI then prints its one "interrupted" line. The default seed count is 30 on envs whose
evaluator declares its ground truth (the benchmark tables) and 10 elsewhere.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ma2ml.commands.common import CliError, Handler, add_run_options, parse_settings
from ma2ml.comparison import DEFAULT_ENV, OTHER_SEEDS, TRUTH_SEEDS, Comparison
from ma2ml.suite_comparison import SUITE_SEEDS, SuiteComparison


def register(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("compare", help="run learners x seeds on one env; write summary.md, figures, marl-eval JSON",
                       description="Run learners x seeds on one registered env and compare them.")
    p.add_argument("--env", default=None,
                   help=f"registered PettingZoo id (default {DEFAULT_ENV}, the benchmark table; see `ma2ml list`)")
    p.add_argument("--suite", default=None,
                   help="a benchmark suite instead of one env: NAME, NAME:dev or NAME:test (`ma2ml bench suites`); "
                        "every task at its own budget and settings, ranked across tasks in suite.md "
                        f"(default seeds {SUITE_SEEDS})")
    p.add_argument("--learners", required=True, help="comma-separated learner names (see `ma2ml list`)")
    p.add_argument("--seeds", type=int, default=None,
                   help=f"seeds per learner, the same for every learner (default {TRUTH_SEEDS} on envs that know "
                        f"their ground truth, the benchmark table; {OTHER_SEEDS} elsewhere)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--budget", type=int, default=None, help="evaluations per run (default 300)")
    p.add_argument("--batch-size", type=int, default=10, help="evaluations per batch (default 10)")
    p.add_argument("--top-k", type=int, default=10, help="k of the top-k figure (default 10)")
    p.add_argument("--budgets", default=None,
                   help="comma-separated budget points (evaluations) of the anytime tables; those below --budget "
                        "are kept and --budget is always added (default 25,50,100,200: "
                        "ma2ml.report.ANYTIME_BUDGETS)")
    p.add_argument("--jobs", type=int, default=1,
                   help="learner x seed runs in parallel processes, one torch thread each (default 1)")
    p.add_argument("--out", required=True, help="output folder")
    add_run_options(p, learner_help="config field of every learner (repeatable), e.g. race_seeds=8; the fields "
                                     "every learner has: reevaluate_share, reevaluate_top, race_seeds")
    return run


def parse_budgets(text: str | None) -> list[int] | None:
    """``--budgets``: comma-separated positive integers (None: the report's default)."""
    if text is None:
        return None
    try:
        budgets = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        budgets = []
    if not budgets or min(budgets) < 1:
        raise CliError(f"--budgets must be comma-separated positive integers (evaluations), got {text!r}")
    return budgets


def run(args: argparse.Namespace) -> None:
    if args.suite is not None:
        return run_suite(args)
    budgets = parse_budgets(args.budgets)
    comparison = Comparison(out=args.out, env=args.env or DEFAULT_ENV,
                            env_args=parse_settings(args.env_arg, "--env-arg"),
                            learner_args=parse_settings(args.learner_arg, "--learner-arg"),
                            learners=args.learners.split(","), seeds=args.seeds, first_seed=args.first_seed,
                            budget=300 if args.budget is None else args.budget, batch_size=args.batch_size,
                            top_k=args.top_k, budgets=budgets,
                            jobs=args.jobs, no_repeat=args.no_repeat, executor=args.executor, workers=args.workers)
    report = comparison.run()
    out = comparison.out
    print((out / "summary.md").read_text())
    print(f"{report.verdict().replace('**', '')} Wrote {out}/summary.md, figures, per_run.json and "
          "marl_eval.json.")


def run_suite(args: argparse.Namespace) -> None:
    """``--suite``: the options that set a single env's task do not apply (each task fixes them)."""
    given = [f"--{name.replace('_', '-')}" for name in ("env", "budget", "budgets", "executor", "workers")
             if getattr(args, name) is not None] + (["--env-arg"] if args.env_arg else [])
    if given:
        raise CliError(f"{', '.join(given)} does not apply with --suite: each task fixes its env, "
                       "settings and budget (`ma2ml bench suites` lists them)")
    comparison = SuiteComparison(out=args.out, suite=args.suite, learners=args.learners.split(","),
                                 seeds=args.seeds if args.seeds is not None else SUITE_SEEDS,
                                 first_seed=args.first_seed, batch_size=args.batch_size, jobs=args.jobs,
                                 learner_args=parse_settings(args.learner_arg, "--learner-arg"),
                                 no_repeat=args.no_repeat)
    comparison.run()
    print((Path(comparison.out) / "suite.md").read_text())
    print(f"Wrote {comparison.out}/suite.md, suite.json, ranks.png, cd.png and every task's comparison in tasks/.")
