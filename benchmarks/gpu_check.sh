#!/usr/bin/env bash
# The GPU check of ma2ml: run it on a machine with an NVIDIA GPU, from any folder:
#
#     bash benchmarks/gpu_check.sh            # PYTHON=... to pick the interpreter
#
# 1. the CUDA tests: batched augmentation vs torchvision on CUDA (tests/test_augment.py) and
#    final training on CUDA loaded back on the CPU (tests/test_final.py -k cuda);
# 2. benchmarks/bench_augment.py on CUDA (batched on the GPU vs torchvision per image);
# 3. benchmarks/bench_train.py on CUDA (the fast training path vs a DataLoader pipeline);
# then every headline again under "summary". Each step has its own time limit; all together
# stay under 5 minutes. Installs nothing heavy: at most `pip install --no-deps -e .` when ma2ml
# is not importable. Logs go to $OUT when it is set. Without a GPU it says so and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import torch' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "gpu_check: a GPU is present but $PY cannot import torch; install the project's requirements"
        exit 1
    fi
    echo "gpu_check: no CUDA GPU found (and $PY has no torch); nothing to check"
    exit 0
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA GPU found (torch.cuda.is_available() is False); nothing to check"
    exit 0
fi
if ! "$PY" -c 'import ma2ml.envs' 2>/dev/null; then
    echo "gpu_check: ma2ml is not importable; installing it alone: pip install --no-deps -e ."
    "$PY" -m pip install --no-deps --no-build-isolation -q -e . || { echo "gpu_check: install failed"; exit 1; }
    "$PY" -c 'import ma2ml.envs' || { echo "gpu_check: ma2ml still not importable (missing requirements?)"; exit 1; }
fi

LOGS="$(mktemp -d)"
STATUS=0
SUMMARY=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, keep its log and its last line
    local name="$1" limit="$2"
    shift 2
    echo
    echo "== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "-- $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || STATUS=1
    SUMMARY+=("$name (exit $rc): $(tail -n 1 "$LOGS/$name.log")")
}

step machine 30 "$PY" -c 'import torch, torchvision; p = torch.cuda.get_device_properties(0);
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}; {torch.cuda.device_count()} GPU(s): {p.name}, "
      f"{p.total_memory / 2**30:.0f} GiB; bf16 {torch.cuda.is_bf16_supported()}")'
step cuda-tests 90 "$PY" -m pytest tests/test_augment.py "tests/test_final.py::test_cuda_final_training_loads_on_cpu" \
    -q -p no:cacheprovider
step bench-augment 60 "$PY" benchmarks/bench_augment.py --device cuda --images 16384 --batch-size 512 --repeats 3
step bench-train 110 "$PY" benchmarks/bench_train.py --device cuda --steps 200 --batch-size 256 --warmup 10

echo
echo "== summary"
for line in "${SUMMARY[@]}"; do
    echo "$line"
done
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    cp "$LOGS"/*.log "$OUT"/
fi
exit $STATUS
