"""What a benchmark suite comparison costs: each learner's wall seconds per run on the suite's tasks, against
random search on the same task in the same process (the reference: table lookups and the run folder's
bookkeeping, nothing learned), and the whole comparison's time extrapolated from them.

    python benchmarks/bench_suite_cost.py [--suite tables-v1:test] [--learners ma2ml,...] [--seeds 10] \\
        [--jobs 2] [--sample one-per-table|all]

Each learner runs one seed on each measured task (``--sample one-per-table``: the first test task of each
table, standing for the others on it, which share its budget; ``all``: every task), as ``ma2ml compare``
runs it (one torch thread, in-process), after an untimed run that loads the task's table. The extrapolation is ``sum over tasks and learners of seconds per run
x seeds / jobs``: learners' compute dominates, lookups are microseconds. The figures hold for the machine
they ran on; the ratios to random search travel better.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

DEFAULT_LEARNERS = "ma2ml,ma2ml-onpolicy,ma2ml-lite,reinforce,ppo,random,evolution,independent"
"""The suite comparison's eight learners."""


def run_seconds(task, learner: str, out: Path, seed: int = 0) -> float:
    """Wall seconds of one run of ``learner`` on ``task`` (a fresh run folder)."""
    from ma2ml.experiment import Experiment

    start = time.perf_counter()
    Experiment(out=out, env=task.env, env_args=task.env_args, learner=learner, budget=task.budget, batch_size=10,
               seed=seed).run(progress=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    from ma2ml.envs.core.threads import set_process_threads
    from ma2ml.suites import get_suite

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="tables-v1:test", help="NAME[:dev|test] (default tables-v1:test)")
    parser.add_argument("--learners", default=DEFAULT_LEARNERS, help=f"comma-separated (default {DEFAULT_LEARNERS})")
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the extrapolated comparison (default 10)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs of the extrapolated comparison (default 2)")
    parser.add_argument("--sample", choices=("one-per-table", "all"), default="one-per-table",
                        help="which tasks to time (default: the first of each table)")
    args = parser.parse_args(argv)
    set_process_threads()
    suite, split = get_suite(args.suite)
    tasks = suite.split(split)
    compared = [n for n in args.learners.split(",") if n]
    learners = ["random"] + [n for n in compared if n != "random"]  # the reference first, on every task
    measured, stands_for = [], {}
    for task in tasks:
        table = task.env
        if args.sample == "all" or table not in stands_for:
            measured.append(task)
            stands_for[table] = task.name
    seconds: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in measured:
            run_seconds(task, "random", Path(tmp) / task.name / "warm-up", seed=1)  # untimed: loads the table
            for learner in learners:
                seconds[task.name, learner] = run_seconds(task, learner, Path(tmp) / task.name / learner)
                ratio = seconds[task.name, learner] / seconds[task.name, "random"]
                print(f"{task.name:24s} {learner:16s} {seconds[task.name, learner]:7.2f} s ({ratio:.1f}x random)",
                      flush=True)
    total = 0.0
    for task in tasks:
        proxy = task.name if args.sample == "all" else stands_for[task.env]
        total += sum(seconds[proxy, n] for n in compared)
    total *= args.seeds / args.jobs
    print()
    print("| learner | seconds per run (mean over the measured tasks) | x random search |")
    print("|---|---|---|")
    for learner in learners:
        mean = sum(seconds[t.name, learner] for t in measured) / len(measured)
        ref = sum(seconds[t.name, "random"] for t in measured) / len(measured)
        print(f"| {learner} | {mean:.2f} | {mean / ref:.1f} |")
    print()
    print(f"{suite.name}{':' + split if split else ''}: {len(tasks)} tasks x {len(compared)} learners "
          f"x {args.seeds} seeds with {args.jobs} jobs: about {total / 60:.0f} minutes on this machine "
          f"(extrapolated from {len(measured)} measured tasks)")


if __name__ == "__main__":
    main()
