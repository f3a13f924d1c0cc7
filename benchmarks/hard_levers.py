"""The hard tier's levers, measured on the built table: issue 15's threshold-1 figures (alternating
best responses to the top 0.1 %, in both agent orders; the additive model's best rank; agent-wise
equilibria) and the top-1 % spread, under the poster's reward and a family of training budgets,
each on the table's seed-averaged ground truth (docs/hard_benchmark_pilot.md, "On the built table").

    python3 benchmarks/hard_levers.py [--table ma2ml/bench/data/digits_hard.npz] [--starts 1000]

Only the tier's own reward (B x1, v -3) has its top refined with extra seeds; the other rows use
whatever seeds their tops have so far, so they are provisional until the build is complete.
"""
from __future__ import annotations

import argparse
from pathlib import Path

LEVERS = ((1.0, 0.0), (0.5, -3.0), (0.75, -3.0), (1.0, -3.0), (1.5, -3.0), (2.0, -3.0), (3.0, -3.0),
          (1.0, -1.0), (1.0, -10.0), (2.0, -10.0))
"""(B as a multiple of the median training cost, v); v = 0 is the poster's reward."""


def main(argv: list[str] | None = None) -> None:
    import numpy as np

    from ma2ml.bench.hard.game import game_stats
    from ma2ml.bench.hard.definitions import candidate_reward
    from ma2ml.bench.hard.tables import CANDIDATE, HARD_BENCH
    from ma2ml.bench.table import TableEvaluator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=None, help="a hard table file (default: the packaged one)")
    parser.add_argument("--starts", type=int, default=1000, help="best-response starts")
    args = parser.parse_args(argv)
    ev = TableEvaluator(args.table, replicate=0, bench=HARD_BENCH)
    shape = [int(np.prod(sizes)) for sizes in ev.layout.sizes]
    print("| reward | BR -> top 0.1% | reverse order | additive best rank | equilibria | top-1% spread |")
    print("|---|---|---|---|---|---|")
    for multiple, v in LEVERS:
        g = game_stats(ev.truth(candidate_reward(CANDIDATE, multiple, v)), shape, starts=args.starts)
        name = "poster (no budget)" if v == 0 else f"B x{multiple:g}, v {v:g}"
        print(f"| {name} | {g['br_top01']:.3f} | {g['br_top01_reverse_order']:.3f} | {g['additive_best_rank']:,} "
              f"| {g['equilibria']} | {g['top1_spread']:.4f} |")


if __name__ == "__main__":
    main()
