"""Compact the hard tier's build shards into a table file and print how far the build got (the seeds per
pipeline). The packaged table ``ma2ml/bench/data/digits_hard.npz`` is frozen (``HARD_BENCH.sha256``, December
2026): ``ma2ml/AutoML-DigitsHard-v0`` always answers from those bytes. Compacting more shards makes a new
table: write it under a new name (``--out``) and register it as a new version id, never over the v0 file.

    python3 benchmarks/hard_table.py [--build benchmarks/results/hard_build] [--out ma2ml/bench/data/digits_hard.npz]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    from ma2ml.bench.hard.tables import HARD_TABLE_PATH, compact_build

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "results" / "hard_build", help="the build's shard folder")
    parser.add_argument("--out", type=Path, default=HARD_TABLE_PATH, help="the table to write (.npz)")
    args = parser.parse_args(argv)
    path = compact_build(args.build, args.out)
    import numpy as np

    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
    print(f"table written to {path}: {meta['entries']:,} trainings; pipelines by stored seeds "
          f"{meta['seeds_histogram']}; base build complete: {meta['complete']}")


if __name__ == "__main__":
    main()
