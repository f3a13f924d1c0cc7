#!/usr/bin/env bash
# The default comparison shown in the README: every registered learner, 10 seeds, on the
# digits benchmark table with a fixed replicate (deterministic rewards, exact regret), a
# budget of 260 evaluations (5% of the 5,184 pipelines) in batches of 10.
# Seeds 100..109 are reported; learner defaults were tuned on the synthetic game (seeds 0..9),
# never on these runs. Resumable: rerunning skips finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/compare_digitsbench}
ma2ml compare --env ma2ml/AutoML-DigitsBench-v0 --env-arg table_seed=0 \
  --learners ma2ml,ma2ml-onpolicy,ma2ml-lite,reinforce,ppo,a2c,random,evolution \
  --seeds 10 --first-seed 100 --budget 260 --batch-size 10 --top-k 10 --jobs 2 --out "$OUT"

# A harder setting: 2% of the table (100 evaluations) with the table's seed noise
# (the 3-seed subset answers with a replicate drawn per episode).
ma2ml compare --env ma2ml/AutoML-DigitsBench-v0 \
  --learners ma2ml,ma2ml-onpolicy,ma2ml-lite,reinforce,ppo,a2c,random,evolution \
  --seeds 10 --first-seed 100 --budget 100 --batch-size 10 --top-k 10 --jobs 2 --out "${OUT}_noisy_budget100"
