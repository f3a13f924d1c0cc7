"""What a newcomer meets first: nothing left in /tmp, one thread policy, snippets that run."""
from __future__ import annotations

import tempfile

import pettingzoo
import pytest

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.agents import make_learner


@pytest.mark.parametrize("name", ["ppo", "a2c"])
def test_sb3_learners_leave_nothing_in_tmp(tmp_path, monkeypatch, name):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0")
    env.reset(seed=0)
    learner = make_learner(name, env, seed=0)
    try:
        learner.learn(env, budget=8, batch_size=4)
    finally:
        learner.close()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("SB3-")] == []
