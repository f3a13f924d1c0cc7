"""Conformance of the AutoML env and its joint view (PettingZoo, Gymnasium, SB3 checkers)."""
from __future__ import annotations

import gymnasium
import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.envs import automl_v0
from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.envs.joint import JointAutoMLEnv


def synthetic(**kw):
    return automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0, noise=0.05), **kw)


def test_parallel_api_synthetic():
    parallel_api_test(synthetic(), num_cycles=10)


def test_parallel_seed_synthetic():
    parallel_seed_test(synthetic, num_cycles=10)


def test_aec_api_synthetic():
    from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

    api_test(OrderEnforcingWrapper(parallel_to_aec(synthetic())), num_cycles=10)


def test_spaces_are_cached(synthetic_env):
    for a in synthetic_env.possible_agents:
        assert synthetic_env.action_space(a) is synthetic_env.action_space(a)
        assert synthetic_env.observation_space(a) is synthetic_env.observation_space(a)
    with pytest.raises(ValueError, match="unknown agent 'x'.*aug"):
        synthetic_env.action_space("x")


def test_step_contract(synthetic_env):
    obs, _ = synthetic_env.reset(seed=3)
    assert set(obs) == {"aug", "nas", "hpo"}
    np.testing.assert_array_equal(obs["aug"], synthetic_env.state())
    actions = {a: synthetic_env.action_space(a).sample() for a in synthetic_env.agents}
    obs, rew, term, trunc, infos = synthetic_env.step(actions)
    assert len(set(rew.values())) == 1 and all(term.values()) and not any(trunc.values())
    assert synthetic_env.agents == []
    info = infos["nas"]
    assert info["status"] == "ok" and info["reward"] == rew["nas"]
    assert {"val_acc", "test_acc", "flops", "params", "curve", "pipeline", "seed"} <= set(info)
    assert "train_seconds" not in info and synthetic_env.last_record.train_seconds >= 0
    with pytest.raises(ValueError, match="finished episode"):
        synthetic_env.step(actions)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"aug": [0, 0], "nas": [0, 0]}, "this env's agents are"),
        ({"aug": [0, 9], "nas": [0, 0], "hpo": [0, 0]}, r"agent 'aug': token 1 \(t1\) = 9 is out of range; valid values are 0..3"),
        ({"aug": [0, 0, 0], "nas": [0, 0], "hpo": [0, 0]}, "agent 'aug': expected 2 tokens"),
    ],
)
def test_bad_actions(synthetic_env, bad, match):
    synthetic_env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        synthetic_env.step(bad)


def test_agent_subset_and_unknown():
    env = automl_v0.parallel_env(agents=["nas", "hpo"])
    assert env.possible_agents == ["nas", "hpo"]
    with pytest.raises(ValueError, match="unknown agents \\['bogus'\\].*available modules are \\['aug', 'nas', 'hpo'\\]"):
        automl_v0.parallel_env(agents=["nas", "bogus"])
    with pytest.raises(ValueError, match="unknown task 'nope'; registered tasks are"):
        automl_v0.parallel_env(task="nope")


def test_registered_ids():
    env = pettingzoo.make("parallel", "ma2ml/AutoML-Digits-v0", epochs=1)
    assert env.possible_agents == ["aug", "nas", "hpo"]
    genv = gymnasium.make("ma2ml/JointAutoML-Digits-v0", epochs=1)
    assert genv.action_space.shape == (sum(len(env.action_space(a).nvec) for a in env.possible_agents),)
    aec = pettingzoo.make("aec", "ma2ml/AutoML-Digits-v0", epochs=1)
    assert aec.possible_agents == ["aug", "nas", "hpo"]


def test_cifar_env_without_data_dir_is_one_clear_error():
    with pytest.raises(ValueError, match="cifar10 needs --data-dir"):
        pettingzoo.make("parallel", "ma2ml/AutoML-CIFAR10-v0")


def test_joint_view_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = JointAutoMLEnv(evaluator=SyntheticEvaluator(game=0))
    gym_check(env, skip_render_check=True)
    sb3_check(JointAutoMLEnv(evaluator=SyntheticEvaluator(game=0)))
    env.reset(seed=0)
    action = env.action_space.sample()
    assert np.array_equal(env.join(env.split(action)), action)
    with pytest.raises(ValueError, match="joint action of shape"):
        env.step(action[:-1])


@pytest.mark.slow
def test_real_training_env_conformance():
    make = lambda: pettingzoo.make("parallel", "ma2ml/AutoML-Digits-v0", epochs=1)  # noqa: E731
    parallel_api_test(make(), num_cycles=2)
    parallel_seed_test(make, num_cycles=2)


def test_reward_constraint_in_env():
    ev = SyntheticEvaluator(game=0, flops=2_000_000)
    env = automl_v0.parallel_env(evaluator=ev, flops_constraint=1_000_000, reward_exponent=-0.07)
    env.reset(seed=0)
    actions = {a: env.action_space(a).sample() for a in env.agents}
    _, rew, _, _, infos = env.step(actions)
    assert rew["aug"] == pytest.approx(infos["aug"]["val_acc"] * 2.0 ** -0.07)


def test_the_env_takes_the_game_and_little_else():
    """Issue 24: the env class takes task, agents, spaces, evaluator, reward, seed policy, info format and
    render mode (at most eight parameters); the runtime is attach()'s; an argument an Evaluator decides is
    refused by name instead of being silently ignored."""
    import inspect

    from ma2ml.bench.synthetic import SyntheticEvaluator
    from ma2ml.envs.automl_v0 import AutoMLParallelEnv
    from ma2ml.envs.core.errors import UserError

    assert len(inspect.signature(AutoMLParallelEnv.__init__).parameters) - 1 <= 8
    with pytest.raises(TypeError, match="epochs"):
        AutoMLParallelEnv(epochs=3)  # a training option is the evaluator's, not the env's
    with pytest.raises(UserError, match=r"^data_dir=, epochs=, spaces=, task= does not apply here: the "
                                        r"SyntheticEvaluator decides"):
        automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), task="cifar10", epochs=3,
                               data_dir="/nonexistent", spaces={"x": None})
    with pytest.raises(UserError, match="reward_fn = 0.5 is invalid"):
        AutoMLParallelEnv(evaluator=SyntheticEvaluator(game=0), reward_fn=0.5)
    env = AutoMLParallelEnv(evaluator=SyntheticEvaluator(game=0))
    assert env.run_log is None and env.attach(store=None) is env
