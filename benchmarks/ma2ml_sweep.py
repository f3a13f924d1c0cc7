"""MA2ML's settings measured on the table, on the *tuning* seed range 2000..2031 — disjoint
from the seeds any README figure reports (3000..3029 for the December 2026 comparison).

    python benchmarks/ma2ml_sweep.py [--seeds 32] [--first-seed 2000] [--budget 260] [--batch-size 10]

For each named setting (MA2ML's defaults with one change) it prints the mean simple regret
(optimum − best reward found) with a 95% bootstrap CI, the share of runs that find the
optimum and the mean number of distinct pipelines evaluated; the table's fixed replicate
(``table_seed=0``) makes rewards deterministic. The defaults of :class:`ma2ml.agents.MA2MLConfig`
(τ = 0.1 once per batch, exact counterfactual baseline, one critic, the no-repeat protocol)
were chosen from this script's output; docs/learners.md quotes it.
"""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pettingzoo
import torch
from scipy.stats import bootstrap

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.learners import make_learner

SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "repeats allowed": {"no_repeat": False},
    "Monte-Carlo baseline (K=16)": {"exact_baseline_max": 0},
    "tau = 0.01 (DMAC)": {"target_rate": 0.01},
    "tau = 0.03": {"target_rate": 0.03},
    "tau = 0.3": {"target_rate": 0.3},
    "lambda = 0": {"kl_coef": 0.0},
    "5 critics, mean": {"critics": 5},
    "5 critics, optimism 1": {"critics": 5, "optimism": 1.0},
}


def run(settings: dict[str, Any], seed: int, budget: int, batch_size: int) -> tuple[float, int]:
    """(best reward found, distinct pipelines evaluated) of one run."""
    settings = dict(settings)
    no_repeat = settings.pop("no_repeat", True)
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    env.reset(seed=seed)
    learner = make_learner("ma2ml", env, seed=seed, **settings)
    batches = learner.learn(env, budget=budget, batch_size=batch_size, no_repeat=no_repeat)
    learner.close()
    rows = {learner.row_key(row) for b in batches for row in learner.joint(b.actions)}
    return max(r for b in batches for r in b.rewards), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--budget", type=int, default=260)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated setting names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    optimum, _ = env.evaluator.reference(env.reward_fn)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    chosen = [s for s in args.only.split(",") if s] or list(SETTINGS)
    print(f"MA2ML on ma2ml/AutoML-DigitsBench-v0 (table_seed=0), budget {args.budget}, batches of "
          f"{args.batch_size}, seeds {seeds.start}..{seeds.stop - 1}")
    for name in chosen:
        runs = [run(SETTINGS[name], seed, args.budget, args.batch_size) for seed in seeds]
        regret = np.array([optimum - best for best, _ in runs])
        ci = bootstrap((regret,), np.mean, confidence_level=0.95, random_state=0).confidence_interval
        print(f"{name:30s} regret {regret.mean():.4f} [{ci.low:.4f}, {ci.high:.4f}]  finds optimum "
              f"{np.mean(regret <= 1e-12):.0%}  distinct {np.mean([d for _, d in runs]):.0f}", flush=True)


if __name__ == "__main__":
    main()
