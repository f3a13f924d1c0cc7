"""Compact a table's build shards (the hard tier's, or a suite table's with ``--candidate mnist|shapes``) into a
table file and print how far the build got (the seeds per pipeline). The packaged table ``ma2ml/bench/data/digits_hard.npz`` is frozen (``HARD_BENCH.sha256``, December
2026): ``ma2ml/AutoML-DigitsHard-v0`` always answers from those bytes. Compacting more shards makes a new
table: write it under a new name (``--out``) and register it as a new version id, never over the v0 file.

    python3 benchmarks/hard_table.py [--build benchmarks/results/hard_build] [--out ma2ml/bench/data/digits_hard.npz]
    python3 benchmarks/hard_table.py --candidate mnist   # benchmarks/results/suite_build -> ma2ml/bench/data/mnist_bench.npz
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    from ma2ml.bench.hard.definitions import DEFINITIONS
    from ma2ml.bench.hard.tables import HARD_TABLE_PATH, SUITE_BENCHES, compact_build

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", choices=("combined", *SUITE_BENCHES), default="combined",
                        help="the table: combined (the hard tier's, default) or a suite table")
    parser.add_argument("--build", type=Path, help="the build's shard folder (default: results/hard_build for the "
                                                    "hard tier, results/suite_build for a suite table)")
    parser.add_argument("--out", type=Path, help="the table to write (.npz; default: the packaged file)")
    args = parser.parse_args(argv)
    if args.candidate == "combined":
        build, out, kwargs = args.build or ROOT / "results" / "hard_build", args.out or HARD_TABLE_PATH, {}
    else:
        bench = SUITE_BENCHES[args.candidate]
        build, out = args.build or ROOT / "results" / "suite_build", args.out or bench.path
        kwargs = {"candidate": DEFINITIONS[args.candidate], "bench": bench}
    path = compact_build(build, out, **kwargs)
    import numpy as np

    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
    print(f"table written to {path}: {meta['entries']:,} trainings; pipelines by stored seeds "
          f"{meta['seeds_histogram']}; base build complete: {meta['complete']}")


if __name__ == "__main__":
    main()
