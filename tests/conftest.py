"""Shared fixtures: a fast synthetic env and a tiny real-training env. The benchmark scripts' folder is
on ``sys.path``, so tests can import the research code that lives there (``hard_pilot_lib``)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


@pytest.fixture
def synthetic_env():
    from ma2ml.envs.automl_v0 import parallel_env
    from ma2ml.bench.synthetic import SyntheticEvaluator

    return parallel_env(evaluator=SyntheticEvaluator(game=0))
