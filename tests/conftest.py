"""Shared fixtures: a fast synthetic env and a tiny real-training env."""
from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def synthetic_env():
    from ma2ml.envs.automl_v0 import parallel_env
    from ma2ml.bench.synthetic import SyntheticEvaluator

    return parallel_env(evaluator=SyntheticEvaluator(game=0))
