"""``ma2ml search``: run one learner on one registered env and record every evaluation.

    ma2ml search --env ma2ml/AutoML-Digits-v0 --learner ma2ml --budget 64 --batch-size 8 \\
                 --seed 0 --out runs/digits-ma2ml [--env-arg epochs=1 ...] [--learner-arg kl_coef=0.05 ...] \\
                 [--executor process --workers 4]

A thin wrapper over :class:`ma2ml.experiment.Experiment`, which writes the run folder ``--out``
(``results.jsonl``, ``timings.jsonl``, ``best.json``, ``evals.sqlite``, ``checkpoint.pt``,
``run.json``: :mod:`ma2ml.runfolder`) and resumes an interrupted run when the same command runs
again; this prints the best pipeline (``env.describe``) at the end.

Unknown env or learner names, budgets, batch sizes or seeds out of range, an unusable
``--out`` and bad ``--env-arg``/``--learner-arg`` settings end in one line on stderr and exit
code 2, before anything is written. ``--env-arg``/``--learner-arg`` values are Python
literals (``epochs=1``, ``net_arch=(32,32)``, ``device=cpu``: anything else is taken as a
string); they are compared as JSON, so ``(32,32)`` and ``[32, 32]`` are the same setting.
``--executor``/``--workers`` say where evaluations run (``--env-arg executor=...`` works too).
"""
from __future__ import annotations

import argparse

from ma2ml.commands.common import Handler, add_run_options, parse_settings
from ma2ml.experiment import DEFAULT_ENV, DEFAULT_LEARNER, Experiment, check_run_args
from ma2ml.runfolder import BEST_FILE, CHECKPOINT_FILE, RESULTS_FILE, STORE_FILE, TIMINGS_FILE, check_writable_folder


def register(sub: argparse._SubParsersAction) -> Handler:
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
    add_run_options(p, learner_help="config field of the learner (repeatable), e.g. kl_coef=0.05")
    return run


def run(args: argparse.Namespace) -> None:
    check_run_args(args.learner, args.budget, args.batch_size, args.seed)
    check_writable_folder(args.out)
    experiment = Experiment(out=args.out, env=args.env, env_args=parse_settings(args.env_arg, "--env-arg"),
                            learner=args.learner, learner_args=parse_settings(args.learner_arg, "--learner-arg"),
                            budget=args.budget, batch_size=args.batch_size, seed=args.seed, no_repeat=args.no_repeat,
                            executor=args.executor, workers=args.workers)
    best = experiment.run()
    out = experiment.out
    print(f"best reward {best['reward']:.4f} (evaluation {best['index']}, batch {best['batch']}, "
          f"status {best['status']}, val_acc {best['metrics']['val_acc']:.4f}, "
          f"FLOPs {best['metrics']['flops']:,} multiply-adds)")
    print(best["description"])
    rec = best["recommended"]
    if rec["index"] != best["index"] or rec["evaluations_of_it"] > 1:
        print(f"recommended (what the learner stands behind): evaluation {rec['index']}, mean reward "
              f"{rec['observed_mean']:.4f} over {rec['evaluations_of_it']} evaluation"
              f"{'s' * (rec['evaluations_of_it'] != 1)} (best.json's \"recommended\")")
    print(f"\nwrote {out}/:")
    for name, what in ((BEST_FILE, "the best pipeline, its tokens and the run's settings"),
                       (RESULTS_FILE, f"all {best['evaluations']} evaluations, one JSON row each"),
                       (TIMINGS_FILE, "wall-clock seconds of each evaluation"),
                       (STORE_FILE, "the evaluation store (SQLite): the same command resumes or extends the run"),
                       (CHECKPOINT_FILE, "the learner's state after the last batch")):
        print(f"  {name:14s} {what}")
    print(f"next: ma2ml train {out / BEST_FILE} --epochs 30   "
          "# train the found pipeline at full budget on train+val, report test accuracy")
