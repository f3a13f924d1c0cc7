"""How well a suite comparison's ranking of learners replicates, from its committed runs: the Spearman
correlation of the learners' average ranks between two disjoint sets of k seeds, over many random splits,
for k = 1 .. half the seeds (the report's replication line is one such split: the first half against the
second).

    python benchmarks/suite_replication.py [--out benchmarks/results/suite_tables_v1] [--splits 200]

It reads every task's ``per_run.json`` (no run is repeated) and prints, per k, the mean and the 10th-90th
percentiles of the Spearman correlation, and the share of splits in which the first and the last learner
keep their places. Written to ``replication.md`` beside ``suite.md``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def scores(out: Path) -> tuple[list[str], np.ndarray]:
    """(learners, final normalised scores ``(learners, tasks, seeds)``) of a finished suite comparison."""
    stats = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    learners, tasks = stats["learners"], stats["tasks"]
    table = []
    for task in tasks:
        per_run = json.loads((out / "tasks" / task / "per_run.json").read_text(encoding="utf-8"))
        scale = stats["per_task"][task]["random_regret"]
        rows = {}
        for run in per_run["runs"]:
            rows.setdefault(run["learner"], {})[run["seed"]] = run["at_budget"]["true_regret"][-1] / scale
        table.append([[rows[n][s] for s in sorted(rows[n])] for n in learners])
    return learners, np.asarray(table).transpose(1, 0, 2)


def main(argv: list[str] | None = None) -> None:
    from scipy.stats import rankdata, spearmanr

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/suite_tables_v1"))
    parser.add_argument("--splits", type=int, default=200, help="random splits per k (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    learners, s = scores(args.out)
    n_seeds = s.shape[2]
    rng = np.random.default_rng(args.seed)

    def average_rank(part: np.ndarray) -> np.ndarray:
        return rankdata(part.mean(axis=2), axis=0).mean(axis=1)  # rank per task by the seed mean, then mean

    full = average_rank(s)
    first, last = int(np.argmin(full)), int(np.argmax(full))
    lines = [f"# Replication of {args.out.name}: {len(learners)} learners × {s.shape[1]} tasks × {n_seeds} seeds", "",
             f"`python benchmarks/suite_replication.py --out {args.out} --splits {args.splits}`: two disjoint random "
             f"sets of k seeds each, {args.splits} splits per k; the Spearman correlation of the learners' average "
             f"ranks (over tasks, by each task's seed mean) between the two sets; and how often both sets put "
             f"{learners[first]} first and {learners[last]} last (their places on all seeds).", "",
             "| k seeds per set | Spearman mean | 10th-90th percentile | first and last kept |", "|---|---|---|---|"]
    for k in range(1, n_seeds // 2 + 1):
        rhos, kept = [], 0
        for _ in range(args.splits):
            perm = rng.permutation(n_seeds)
            a, b = average_rank(s[:, :, perm[:k]]), average_rank(s[:, :, perm[k:2 * k]])
            rhos.append(spearmanr(a, b).statistic)
            kept += all(int(np.argmin(r)) == first and int(np.argmax(r)) == last for r in (a, b))
        rhos = np.asarray(rhos, dtype=float)
        lines.append(f"| {k} | {np.nanmean(rhos):.2f} | {np.nanpercentile(rhos, 10):.2f} to "
                     f"{np.nanpercentile(rhos, 90):.2f} | {kept / args.splits:.0%} |")
    text = "\n".join(lines) + "\n"
    (args.out / "replication.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
