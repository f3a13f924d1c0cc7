#!/usr/bin/env bash
# The benchmark suite's new tables (docs/suite_tables.md): the whole build scheme of each, resumable.
#
#   nohup bash benchmarks/suite_build.sh mnist  > /tmp/suite_build_mnist.log  2>&1 &
#   nohup bash benchmarks/suite_build.sh shapes > /tmp/suite_build_shapes.log 2>&1 &
#
# (no argument: both tables, one after the other). Each table runs three passes of
# benchmarks/hard_build.py into benchmarks/results/suite_build/, in the order the build needs
# (ma2ml.envs.benchmark.hard.build: the top stage refuses until the first-seed top 10 % has two seeds):
#   1. --seeds 1: replicate 0 of every pipeline;
#   2. --stage base, limited to SECOND_SHARE (12 %) of the pipelines: replicate 1 for the best
#      pipelines by their first seed (the tier's reward's top 10 % first);
#   3. --stage top: 4 more seeds for the top 2 %, then 4 more again for the top 1 % (the union over
#      the build's rewards only once every reward's 10 % has two seeds; raise SECOND_SHARE for it).
# Rerun the same command to resume: every pass skips what is done, and pass 2 counts the second
# seeds already there. A second run of the same table is refused while one is running (a lock).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/suite_build}
SECOND_SHARE=${SECOND_SHARE:-0.12}

build() {  # build NAME ARGS...: one pass of one table, one torch thread, low priority
    local name=$1
    shift
    OMP_NUM_THREADS=1 nice -n 15 python3 benchmarks/hard_build.py --candidate "$name" --out "$OUT" "$@"
}

table() {
    local name=$1 lock="/tmp/ma2ml_suite_build_$1.lock"
    exec 9>"$lock"
    flock -n 9 || { echo "suite_build: $name is being built by another process ($lock)" >&2; return 1; }
    echo "suite_build $name: pass 1 (replicate 0 of every pipeline) $(date -Is)"
    build "$name" --seeds 1
    local pipelines done want
    pipelines=$(python3 -c "from ma2ml.envs.benchmark.hard.candidates import CANDIDATES; print(CANDIDATES['$name'].n_pipelines)")
    done=$( (cat "$OUT/$name"-[0-9]*.jsonl 2>/dev/null || true) | grep -c '"replicate": 1,' || true)
    want=$(python3 -c "import math; print(max(math.ceil($SECOND_SHARE * $pipelines) - $done, 0))")
    echo "suite_build $name: pass 2 ($want more second seeds; $done there) $(date -Is)"
    if [ "$want" -gt 0 ]; then
        build "$name" --stage base --limit "$want"
    fi
    echo "suite_build $name: pass 3 (the top's extra seeds) $(date -Is)"
    build "$name" --stage top
    build "$name" --status
    echo "suite_build $name: done $(date -Is)"
    exec 9>&-
}

for name in "${@:-mnist shapes}"; do
    for n in $name; do
        table "$n"
    done
done
