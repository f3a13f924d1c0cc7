"""What a newcomer meets first: nothing left in /tmp, one thread policy, snippets that run."""
from __future__ import annotations

import tempfile

import pettingzoo
import pytest

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.learners import make_learner


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


def test_learners_run_their_torch_work_on_one_thread_and_restore_the_callers():
    """The thread policy (ma2ml.envs.core.threads): ask/tell use one torch thread, whatever the caller set."""
    import torch

    from ma2ml.baselines.random_search import RandomSearch
    from ma2ml.envs.core.threads import LEARNER_THREADS

    seen = []

    class Watching(RandomSearch):
        def _ask(self, n):
            seen.append(torch.get_num_threads())
            return super()._ask(n)

        def _tell(self, joint, rewards, records):
            seen.append(torch.get_num_threads())

    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0")
    env.reset(seed=0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Watching(env, seed=0).learn(env, budget=6, batch_size=3)
        assert seen == [LEARNER_THREADS] * 4 == [1] * 4
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_cli_sets_one_torch_thread(capsys):
    import torch

    from ma2ml.cli import main

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["list"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_importing_and_using_the_envs_loads_neither_sb3_nor_the_learners():
    import subprocess
    import sys

    code = (
        "import sys, gymnasium, pettingzoo, ma2ml.envs\n"
        "env = pettingzoo.make('parallel', 'ma2ml/AutoML-DigitsBench-v0'); env.reset(seed=0)\n"
        "env.step({a: env.action_space(a).sample() for a in env.possible_agents})\n"
        "joint = gymnasium.make('ma2ml/JointAutoML-DigitsBench-v0'); joint.reset(seed=0)\n"
        "from ma2ml.envs.vector import VectorAutoML\n"
        "print(sorted({m.split('.')[0] if not m.startswith('ma2ml.') else '.'.join(m.split('.')[:2])\n"
        "             for m in sys.modules if m.startswith(('stable_baselines3', 'ma2ml.agents', 'ma2ml.baselines'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
