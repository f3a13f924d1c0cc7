"""The hard tier's build (issue 15): every pipeline of the chosen space trained with 2 seeds into
committed shard files, then the top 2 % (under each of a few rewards) with 4 more seeds;
resumable, one training at a time.

    OMP_NUM_THREADS=1 nohup nice -n 10 python3 benchmarks/hard_build.py > /tmp/hard_build.log 2>&1 &

On an idle machine two processes build twice as fast: ``--worker 0/2`` and ``--worker 1/2`` (each
takes its own shards, and its own half of the top in ``<candidate>-top-<i>of2.jsonl``). The second
seed goes to the best pipelines by their first seed first, so ``--stage top`` can start once the
top 10 % by first seed have both. Rerun the same command to resume (finished trainings are
skipped, a torn last line is dropped).
Shards: ``benchmarks/results/hard_build/<candidate>-<k>.jsonl`` (1,000 pipelines each, built in
order, so every finished shard is final and a uniform random sample of the space), and
``<candidate>-top.jsonl`` for the extra seeds. Every line holds the per-epoch validation and test
accuracy. ``--import`` copies results of the same space and seeds (the pilot's) in first;
``--status`` prints the progress and stops. See
:mod:`ma2ml.bench.hard.sharded`.

The benchmark suite's tables build the same way, ``--candidate mnist`` or ``shapes`` with
``--out benchmarks/results/suite_build``; ``benchmarks/suite_build.sh`` runs their whole scheme
(docs/suite_tables.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "hard_build"


def line_rewards(candidate):
    """The rewards that order the second seed and choose the top (:data:`HARD_REWARD` first, then the
    rest of :data:`TOP_REWARDS`), of result lines: their accuracy and FLOPs, and their pipeline's epochs."""
    from ma2ml.bench.hard.definitions import HARD_REWARD, TOP_REWARDS, space_epochs
    from ma2ml.bench.hard.definitions import candidate_reward
    from ma2ml.envs.core.reward import batch_rewards

    epochs = space_epochs(candidate)
    rewards = []
    for beta, v in [HARD_REWARD, *(r for r in TOP_REWARDS if r != HARD_REWARD)]:  # the tier's own reward first
        fn = candidate_reward(candidate, beta, v)
        rewards.append(lambda a, fn=fn: batch_rewards(fn, a["val_acc"], a["flops"], a["ok"], epochs[a["index"]]))
    return rewards


def main(argv: list[str] | None = None) -> None:
    from ma2ml.bench.hard.definitions import DEFINITIONS, HARD_DEFINITION

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", default=HARD_DEFINITION, choices=sorted(DEFINITIONS))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many trainings")
    parser.add_argument("--import", dest="sources", type=Path, nargs="*", default=[],
                        help="result files of the same space and seeds to copy in first (e.g. the pilot's; "
                             "their lines lack the per-epoch test accuracy, so the default imports none)")
    parser.add_argument("--stage", default="all", choices=("all", "base", "top"),
                        help="base: the base seeds only; top: the extra seeds of the top only; all: both")
    parser.add_argument("--no-top", action="store_true", help="the same as --stage base")
    parser.add_argument("--worker", default="0/1", metavar="I/N",
                        help="build only the shards k with k %% N == I and the top pipelines at positions "
                             "p %% N == I (run N such processes at once)")
    parser.add_argument("--seeds", type=int, default=None, metavar="K",
                        help="base replicates to build now (default: all of them; 1 = a first pass with one "
                             "seed of every pipeline, implies --no-top)")
    parser.add_argument("--status", action="store_true", help="print the progress and stop")
    args = parser.parse_args(argv)
    candidate = DEFINITIONS[args.candidate]
    try:
        worker = tuple(int(x) for x in args.worker.split("/"))
        if len(worker) != 2 or not 0 <= worker[0] < worker[1]:
            raise ValueError
    except ValueError:
        parser.error(f"--worker must be I/N with 0 <= I < N, got {args.worker!r}")

    from ma2ml.bench.hard.sharded import (BUILD_SEEDS, SECOND_SEED_COVER, first_seed_rank, import_results,
                                                 read_build, run_build)

    if args.status:
        import numpy as np

        lines = read_build(candidate, args.out)
        base = sum(r["replicate"] < BUILD_SEEDS for r in lines)
        top = len(lines) - base
        n = candidate.n_pipelines
        recent = sorted(r["finished_at"] for r in lines if "imported_from" not in r)[-500:]
        # the median gap between finishes (pauses between sessions do not count)
        rate = float(np.median(np.diff(recent))) if len(recent) > 1 else float("nan")
        left = n * BUILD_SEEDS - base
        print(f"{candidate.name}: base {base:,} of {n * BUILD_SEEDS:,} trainings "
              f"({100 * base / (n * BUILD_SEEDS):.1f}%); top (extra seeds) {top:,}; "
              f"{rate:.2f} s wall per training lately, base ETA {left * rate / 3600:.1f} h")
        rewards = line_rewards(candidate)

        two = np.bincount([r["index"] for r in lines if r["replicate"] == 1], minlength=n) > 0
        for name, chosen in (("the tier's reward", rewards[:1]), ("any build reward", rewards)):
            rank = first_seed_rank(candidate, args.out, chosen, lines)
            if rank is not None:
                cover = rank < SECOND_SEED_COVER
                print(f"second seed: {int((cover & two).sum()):,} of the {int(cover.sum()):,} pipelines with a "
                      f"first-seed rank in the top {SECOND_SEED_COVER:.0%} under {name} "
                      "(its top stage starts when all have it)")
        return

    seeds = BUILD_SEEDS if args.seeds is None else args.seeds
    if not 1 <= seeds <= BUILD_SEEDS:
        parser.error(f"--seeds must be 1..{BUILD_SEEDS}, got {seeds}")
    import torch

    torch.set_num_threads(1)
    if args.sources:
        print(f"imported {import_results(candidate, args.out, args.sources):,} results from "
              f"{[str(s) for s in args.sources]}", flush=True)
    stage = "base" if args.no_top or seeds < BUILD_SEEDS else args.stage
    trained = run_build(candidate, args.out, seeds=seeds, limit=args.limit, top=line_rewards(candidate),
                        worker=worker, stage=stage)
    print(f"build {candidate.name}: trained {trained:,} this run", flush=True)


if __name__ == "__main__":
    main()
