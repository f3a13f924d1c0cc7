"""Does a rerun of a committed comparison reproduce it? Compares two comparison folders' ``per_run.json``
run by run (every learner × seed present in both), and their ``summary.md`` byte for byte when both hold
the same learners and seeds.

    LEARNERS=random,ma2ml,evolution bash benchmarks/compare_default.sh /tmp/rerun   # (its first command)
    python3 benchmarks/check_rerun.py /tmp/rerun benchmarks/results/compare_digitsbench

A subset of learners checks the runs it holds at a fraction of the cost: a run's entry (its recommendation,
its metrics at every budget point, the area under each curve) depends on that run alone. Exit 1 on any
difference (the first few are printed), 0 when everything compared is identical.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rerun", type=Path)
    parser.add_argument("committed", type=Path)
    args = parser.parse_args(argv)
    new, old = (json.loads((folder / "per_run.json").read_text()) for folder in (args.rerun, args.committed))
    key = lambda r: (r["learner"], r["seed"])  # noqa: E731
    runs_new, runs_old = {key(r): r for r in new["runs"]}, {key(r): r for r in old["runs"]}
    common = sorted(set(runs_new) & set(runs_old))
    if not common:
        print("no learner x seed in common")
        return 1
    differ = [k for k in common if runs_new[k] != runs_old[k]]
    for k in differ[:5]:
        print(f"{k[0]} seed {k[1]} differs:", {f: (runs_new[k][f], runs_old[k].get(f)) for f in runs_new[k]
                                                if runs_new[k][f] != runs_old[k].get(f)})
    print(f"{len(common) - len(differ)} of {len(common)} runs identical "
          f"({len({k[0] for k in common})} learners; the committed folder holds {len(runs_old)} runs)")
    same_runs = set(runs_new) == set(runs_old)
    if same_runs:
        identical = (args.rerun / "summary.md").read_bytes() == (args.committed / "summary.md").read_bytes()
        print(f"summary.md {'identical' if identical else 'DIFFERS'}")
        differ += [] if identical else [("summary.md", 0)]
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
