#!/usr/bin/env bash
# The benchmark suite's comparison (issue 26): twelve learners on the 12 test tasks of tables-v1 (the four
# frozen tables: digits, the hard tier, mnist, shapes), 10 paired seeds (7000..7009, used for nothing else:
# no default was tuned on them or on the test tasks), every learner with its defaults, the no-repeat protocol,
# batches of 10, each task at its own budget. `independent` is the interaction control of every task.
# Writes benchmarks/results/suite_tables_v1/suite.md (and every task's comparison in tasks/<task>/).
# Resumable: rerunning skips finished runs. JOBS (default 2) parallel runs. mappo, ippo, qmix and vdn need the
# marl extra (pip install -e ".[marl]"); without it, LEARNERS=... with the other eight.
set -euo pipefail
cd "$(dirname "$0")/.."
LEARNERS=${LEARNERS:-ma2ml,ma2ml-onpolicy,ma2ml-lite,reinforce,ppo,random,evolution,independent,mappo,ippo,qmix,vdn}
ma2ml compare --suite "${SUITE:-tables-v1:test}" --learners "$LEARNERS" --no-repeats --seeds "${SEEDS:-10}" \
  --first-seed 7000 --batch-size 10 --jobs "${JOBS:-2}" --out "${OUT:-benchmarks/results/suite_tables_v1}"
