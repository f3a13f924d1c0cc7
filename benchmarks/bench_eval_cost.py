"""CPU seconds per ``digits`` evaluation at the task's default budget.

Scores ``--pipelines`` random pipelines of the full digits space (AUG + NAS + HPO, drawn with
``--seed``) through ``TrainEvaluator.evaluate`` on the CPU, one torch thread, plus one reference
pipeline measured in the same run: the task's defaults (its NASNet-A-like cells, default
hyper-parameters, batch 64, no AUG policy). Time is process CPU seconds (``time.process_time``;
other processes on a shared machine do not count) of the whole evaluation (FLOPs count, training,
scoring), after one untimed 1-epoch evaluation that loads the data. With ``--old-epochs E`` every
pipeline is also trained, in the same run, as the code before issue 28 trained it: the proxy of E
epochs (the digits default before December 2026 was 8) and the NAS cells' old kernels
(``common.issue28_kernels``: the dilated convolutions on torch's dilated kernels, the factorized
reduction padding its input). That is the before/after ratio of issue 28; it leaves out the
channels-last training (about 10%, kept in both). The last line is the median
over the random pipelines and its ratios to the reference (and to the old code).

    python benchmarks/bench_eval_cost.py [--pipelines 50] [--old-epochs 8] [--epochs N] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from common import issue28_kernels

from ma2ml.envs.core.records import EvalRecord
from ma2ml.envs.tasks import get_task
from ma2ml.training.evaluators import TrainEvaluator


def timed_evaluation(ev: TrainEvaluator, actions: dict, seed: int) -> tuple[float, float, EvalRecord]:
    """(CPU seconds, wall seconds, record) of one evaluation."""
    cpu, wall = time.process_time(), time.perf_counter()
    record = ev.evaluate(actions, seed)
    return time.process_time() - cpu, time.perf_counter() - wall, record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=50, help="random pipelines to time")
    parser.add_argument("--old-epochs", type=int, default=None,
                        help="also time every pipeline as the old code trained it, at this many epochs (8)")
    parser.add_argument("--epochs", type=int, default=None, help="override the task's epochs (default: its budget)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pipelines and their training")
    parser.add_argument("--quick", action="store_true", help="2 pipelines of 1 epoch, old proxy 2 (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.pipelines, args.epochs, args.old_epochs = 2, 1, 2
    if args.pipelines < 1 or any(e is not None and e < 1 for e in (args.epochs, args.old_epochs)):
        raise SystemExit("--pipelines, --epochs and --old-epochs must be >= 1")
    torch.set_num_threads(1)

    task = get_task("digits")
    full = TrainEvaluator(task, task.make_spaces(), device="cpu", epochs=args.epochs)
    old = TrainEvaluator(task, full.spaces, device="cpu", epochs=args.old_epochs) if args.old_epochs else None
    reference = TrainEvaluator(task, {}, device="cpu", epochs=args.epochs)  # no agents: the task's defaults
    # untimed: loads the data and pays torch's first-call costs (its 1-epoch budget keeps the FLOPs
    # count of the timed evaluations uncached, as in a search)
    TrainEvaluator(task, {}, device="cpu", epochs=1).evaluate({}, args.seed)
    ref_cpu, ref_wall, ref_record = timed_evaluation(reference, {}, args.seed)
    print(f"digits, {full.budget.epochs} epochs per evaluation, CPU, 1 torch thread:")
    print(f"  reference (task defaults): {ref_cpu:6.2f} CPU s  {ref_wall:6.2f} wall s  "
          f"val acc {ref_record.val_acc:.3f}  {ref_record.flops / 1e6:.2f} M MACs")

    rng = np.random.default_rng(args.seed)
    costs, old_costs = [], []
    for i in range(args.pipelines):
        actions = {a: s.sample(rng) for a, s in full.spaces.items()}
        cpu, wall, record = timed_evaluation(full, actions, args.seed + 1 + i)
        costs.append(cpu)
        line = (f"  pipeline {i}: {cpu:6.2f} CPU s  {wall:6.2f} wall s  {record.status:8s} "
                f"val acc {record.val_acc:.3f}  {record.flops / 1e6:.2f} M MACs  "
                f"batch {record.pipeline['hpo']['batch_size']}")
        if old is not None:
            with issue28_kernels():
                old_cpu, _, old_record = timed_evaluation(old, actions, args.seed + 1 + i)
            old_costs.append(old_cpu)
            line += f"  | old, {args.old_epochs} epochs: {old_cpu:6.2f} CPU s  val acc {old_record.val_acc:.3f}"
        print(line, flush=True)
    median = statistics.median(costs)
    print(f"headline: median {median:.2f} CPU s per digits evaluation ({full.budget.epochs} epochs) over {len(costs)} "
          f"random pipelines = {median / ref_cpu:.2f}x the reference pipeline ({ref_cpu:.2f} CPU s)"
          + (f"; the old code ({args.old_epochs} epochs, old kernels): "
             f"median {statistics.median(old_costs):.2f} CPU s, "
             f"{statistics.median(old_costs) / median:.2f}x as long (median of the per-pipeline ratios "
             f"{statistics.median(o / c for o, c in zip(old_costs, costs)):.2f})" if old_costs else ""))


if __name__ == "__main__":
    main()
