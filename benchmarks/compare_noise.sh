#!/usr/bin/env bash
# The recommendation under seed noise (issue 25), on the hard tier with seed noise: every registered
# learner, 30 paired seeds (3000..3029, the hard tier's reporting seeds: no default was tuned on them),
# budget 300 in batches of 10, the no-repeat protocol for the learners' own proposals; `independent` (per-agent
# bandits blind to interactions) is the control for whether the tier rewards coordination.
#   before: the recommendation as the learners make it with their defaults (one evaluation per pipeline:
#           the best observed, a lucky noisy entry);
#   after:  every learner spends the last 20% of its budget re-evaluating its 10 best pipelines
#           (reevaluate_share=0.2, reevaluate_top=10), chosen on the dev seeds 6000..6019 by
#           benchmarks/reevaluation_sweep.py (benchmarks/results/reevaluation/sweep.md).
# Each summary.md reports (a), (b), the winner's curse per learner and the resolved pairs of (a) and (b).
# Resumable: rerunning skips finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
LEARNERS=${LEARNERS:-ma2ml,ma2ml-onpolicy,ma2ml-lite,reinforce,ppo,a2c,random,evolution,independent,tpe,mappo,ippo}
common=(--env ma2ml/AutoML-DigitsHard-v0 --learners "$LEARNERS" --no-repeats --seeds "${SEEDS:-30}"
        --first-seed 3000 --budget 300 --budgets 25,50,100,200 --batch-size 10 --top-k 10 --jobs "${JOBS:-2}")
ma2ml compare "${common[@]}" --out benchmarks/results/compare_digitshard
ma2ml compare "${common[@]}" --learner-arg reevaluate_share=0.2 --learner-arg reevaluate_top=10 \
  --out benchmarks/results/compare_digitshard_reevaluate
