#!/usr/bin/env bash
# The benchmark suite's new tables (docs/suite_tables.md): the whole build scheme of each, resumable.
#
#   nohup bash benchmarks/suite_build.sh mnist  > /tmp/suite_build_mnist.log  2>&1 &
#   nohup bash benchmarks/suite_build.sh shapes > /tmp/suite_build_shapes.log 2>&1 &
#
# (no argument: both tables, one after the other). Each table runs three passes of
# benchmarks/hard_build.py into benchmarks/results/suite_build/, in the order the build needs
# (ma2ml.bench.hard.sharded: the top stage refuses until the first-seed covers have two seeds):
#   1. --seeds 1: replicate 0 of every pipeline;
#   2. --stage base, limited to the second seeds still missing in the covers (the pipelines whose
#      first-seed rank lies in the top 10 % under any of the build's rewards; about 30 % of the hard
#      tier's space), the tier's reward's cover first;
#   3. --stage top: 4 more seeds for the top 2 % under each build reward, then 4 more again for the
#      top 1 % (10 seeds in all).
# Rerun the same command to resume: every pass skips what is done. A run of a table that is being
# built waits for that build to end (a lock, held by the build's processes).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/suite_build}

build() {  # build NAME ARGS...: one pass of one table, one torch thread, low priority
    local name=$1
    shift
    OMP_NUM_THREADS=1 nice -n 15 python3 benchmarks/hard_build.py --candidate "$name" --out "$OUT" "$@"
}

missing_second_seeds() {  # missing_second_seeds NAME: pipelines of the covers without replicate 1
    python3 - "$1" "$OUT" <<'EOF'
import sys

sys.path.insert(0, "benchmarks")
from hard_build import line_rewards
from ma2ml.bench.hard.sharded import SECOND_SEED_COVER, first_seed_rank, read_build
from ma2ml.bench.hard.definitions import DEFINITIONS

candidate, out = DEFINITIONS[sys.argv[1]], sys.argv[2]
lines = read_build(candidate, out)
rank = first_seed_rank(candidate, out, line_rewards(candidate), lines)
two = {r["index"] for r in lines if r["replicate"] == 1}
print(0 if rank is None else sum(int(i) not in two for i in (rank < SECOND_SEED_COVER).nonzero()[0]))
EOF
}

table() {
    local name=$1 lock="/tmp/ma2ml_suite_build_$1.lock" want
    exec 9>"$lock"
    flock 9
    echo "suite_build $name: pass 1 (replicate 0 of every pipeline) $(date -Is)"
    build "$name" --seeds 1
    want=$(missing_second_seeds "$name")
    echo "suite_build $name: pass 2 ($want second seeds missing in the covers) $(date -Is)"
    if [ "$want" -gt 0 ]; then
        build "$name" --stage base --limit "$want"
    fi
    echo "suite_build $name: pass 3 (the top's extra seeds) $(date -Is)"
    build "$name" --stage top
    build "$name" --status
    echo "suite_build $name: done $(date -Is)"
    exec 9>&-
}

for name in ${@:-mnist shapes}; do
    table "$name"
done
