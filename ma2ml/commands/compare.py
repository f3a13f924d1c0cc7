"""``ma2ml compare``: run learners × seeds on one env and report them side by side.

    ma2ml compare --env ma2ml/AutoML-DigitsBench-v0 --learners ma2ml,random [--seeds 30] \\
                  --budget 300 --batch-size 10 --out runs/compare [--jobs 2] [--env-arg table_seed=0] \\
                  [--budgets 25,50,100,200] [--executor process --workers 2] [--learner-arg race_seeds=8]

A thin wrapper over :class:`ma2ml.comparison.Comparison`: every run is an ``ma2ml search`` in
``DIR/runs/<learner>/seed<k>/``; finished runs are not rerun, unfinished ones resume, and the
report (``summary.md``, the figures, ``per_run.json``, ``marl_eval.json``, ``wall_seconds.json``)
is read from the runs' stores, never from their logs. Ctrl-C or SIGTERM stops every run at once;
the CLI then prints its one "interrupted" line. The default seed count is 30 on envs whose
evaluator declares its ground truth (the benchmark tables) and 10 elsewhere.
"""
from __future__ import annotations

import argparse

from ma2ml.commands.common import CliError, Handler, add_run_options, parse_settings
from ma2ml.comparison import DEFAULT_ENV, OTHER_SEEDS, TRUTH_SEEDS, Comparison


def register(sub: argparse._SubParsersAction) -> Handler:
    p = sub.add_parser("compare", help="run learners x seeds on one env; write summary.md, figures, marl-eval JSON",
                       description="Run learners x seeds on one registered env and compare them.")
    p.add_argument("--env", default=DEFAULT_ENV,
                   help=f"registered PettingZoo id (default {DEFAULT_ENV}, the benchmark table; see `ma2ml list`)")
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
    budgets = parse_budgets(args.budgets)
    comparison = Comparison(out=args.out, env=args.env, env_args=parse_settings(args.env_arg, "--env-arg"),
                            learner_args=parse_settings(args.learner_arg, "--learner-arg"),
                            learners=args.learners.split(","), seeds=args.seeds, first_seed=args.first_seed,
                            budget=args.budget, batch_size=args.batch_size, top_k=args.top_k, budgets=budgets,
                            jobs=args.jobs, no_repeat=args.no_repeat, executor=args.executor, workers=args.workers)
    report = comparison.run()
    out = comparison.out
    print((out / "summary.md").read_text())
    print(f"{report.verdict().replace('**', '')} Wrote {out}/summary.md, figures, per_run.json and "
          "marl_eval.json.")
