"""Smoke tests of the throughput benchmarks: each script runs in its tiny ``--quick`` mode and
ends with its headline line. No timing is asserted (shared machines are noisy)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(*argv: str, timeout: float = 300) -> list[str]:
    proc = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()


def test_bench_augment_quick():
    lines = _run(sys.executable, str(BENCHMARKS / "bench_augment.py"), "--quick")
    assert sum("images/s" in line for line in lines[:-1]) == 4  # batched + three torchvision paths
    assert re.fullmatch(r"headline: batched cpu [\d,]+ images/s vs [\d,]+ images/s \(torchvision .+\) = [\d.]+x",
                        lines[-1])


@pytest.mark.slow
def test_bench_train_quick():
    lines = _run(sys.executable, str(BENCHMARKS / "bench_train.py"), "--quick", "--device", "cpu")
    assert any("DataLoader pipeline (1 workers" in line for line in lines)
    assert re.fullmatch(r"headline: fast path [\d,]+ images/s vs DataLoader pipeline [\d,]+ images/s = [\d.]+x on cpu",
                        lines[-1])


@pytest.mark.slow
def test_bench_eval_cost_quick():
    lines = _run(sys.executable, str(BENCHMARKS / "bench_eval_cost.py"), "--quick")
    assert sum(line.lstrip().startswith("pipeline ") for line in lines) == 2
    assert re.fullmatch(r"headline: median [\d.]+ CPU s per digits evaluation \(1 epochs\) over 2 random pipelines "
                        r"= [\d.]+x the reference pipeline \([\d.]+ CPU s\); the old code \(2 epochs, old "
                        r"kernels\): median [\d.]+ CPU s, [\d.]+x as long \(median of the per-pipeline ratios [\d.]+\)",
                        lines[-1])


def test_bench_depthwise_covers_the_rewritten_dilated_convs():
    lines = _run(sys.executable, str(BENCHMARKS / "bench_depthwise.py"), "--repeats", "1")
    rows = [line for line in lines if "|" in line and not line.startswith("channels")]
    assert len(rows) == 24 and sum(line.count("x") == 3 for line in rows) == 12  # the 12 dilated: 3 forms
    assert re.fullmatch(r"headline: speed-up over the default, geometric mean over the shapes: channels-last [\d.]+x, "
                        r"dense block-diagonal [\d.]+x, DilatedDepthwiseConv2d \(channels-last\) [\d.]+x; on the "
                        r"dilated shapes, .+ over the dilated kernel in channels-last: [\d.]+x "
                        r"\(range [\d.]+-[\d.]+x\)", lines[-1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_gpu_check_without_gpu_says_so_and_exits_0():
    lines = _run("bash", str(BENCHMARKS / "gpu_check.sh"), timeout=120)
    assert lines[-1].startswith("gpu_check: no CUDA GPU found")


def test_bench_table_speed_covers_both_tables():
    lines = _run(sys.executable, str(BENCHMARKS / "bench_table_speed.py"), "--seconds", "0.05", "--batch", "1000")
    assert [line for line in lines if line.startswith("ma2ml/")] == ["ma2ml/AutoML-DigitsBench-v0",
                                                                     "ma2ml/AutoML-DigitsHard-v0"]
    assert re.fullmatch(r"headline: AutoML-DigitsBench-v0 [\d,]+ episodes/s via PettingZoo, [\d,]+ lookups/s batched; "
                        r"AutoML-DigitsHard-v0 [\d,]+ episodes/s via PettingZoo, [\d,]+ lookups/s batched "
                        r"\(targets 5,000 and 100,000\): (targets met|TARGETS MISSED)", lines[-1])


def test_hard_levers_prints_a_row_per_reward():
    lines = _run(sys.executable, str(BENCHMARKS / "hard_levers.py"), "--starts", "20")
    rows = [line for line in lines if line.startswith("| poster") or line.startswith("| B x")]
    assert len(rows) == 10 and "| B x1, v -3 |" in "\n".join(rows)


def test_reevaluation_benchmark_runs():
    """benchmarks/reevaluation.py on one seed and a small budget prints its table: a row per learner and share."""
    lines = _run(sys.executable, str(BENCHMARKS / "reevaluation.py"), "--seeds", "6000:6001", "--budget", "30",
                 "--learners", "random")
    rows = [line for line in lines if line.startswith("| random |")]
    assert [row.split(" | ")[1] for row in rows] == ["0", "0.2"]
    assert all(re.search(r"\| \d\.\d{4} \[", row) for row in rows)
