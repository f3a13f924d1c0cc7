"""The train evaluator: real training on digits, determinism, faults, reward, user modules."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ma2ml.envs import automl_v0
from ma2ml.envs.core.reward import FlopsReward
from ma2ml.envs.spaces import HpoSpace, Recipe, TokenSpace
from ma2ml.envs.tasks import get_task
from ma2ml.training.evaluators import TrainEvaluator


def _actions(env, seed=0):
    rng = np.random.default_rng(seed)
    return {a: env.spaces[a].sample(rng) for a in env.possible_agents}


@pytest.mark.slow
def test_real_training_is_deterministic_and_learns():
    env = automl_v0.parallel_env(epochs=2, train_seed=7)
    actions = _actions(env)
    actions["hpo"] = np.array([3, 2, 2, 0, 0, 0])  # lr 0.1, Nesterov 0.9, batch 32: a sane recipe
    first = env.evaluate(actions).to_dict()
    second = env.evaluate(actions).to_dict()
    first.pop("train_seconds"), second.pop("train_seconds")
    assert first == second
    assert first["status"] == "ok" and len(first["curve"]) == 2
    assert first["val_acc"] > 0.3  # well above chance (0.1) after two epochs
    assert first["flops"] > 0 and first["params"] > 0 and 0.0 <= first["test_acc"] <= 1.0
    other = env.evaluator.evaluate(actions, seed=8).to_dict()
    assert other["curve"] != first["curve"]


def test_diverging_training_ends_in_status_not_exception():
    env = automl_v0.parallel_env(agents=["hpo"], epochs=1, spaces={"hpo": HpoSpace({"lr": (1e6, 2e6)})})
    env.reset(seed=0)
    _, rew, term, _, infos = env.step({"hpo": np.array([0])})
    assert infos["hpo"]["status"] == "diverged" and rew["hpo"] == 0.0 and all(term.values())
    assert "non-finite" in infos["hpo"]["error"]


def test_time_limit_ends_in_timeout():
    env = automl_v0.parallel_env(agents=["hpo"], epochs=3, time_limit=1e-6)
    record = env.evaluate({"hpo": env.spaces["hpo"].sample(np.random.default_rng(0))})
    assert record.status == "timeout" and env.reward(record) == 0.0 and len(record.curve) == 1


def test_flops_reward_formula():
    r = FlopsReward(constraint=600.0, exponent=-0.07)
    assert r(0.9, 300.0) == pytest.approx(0.9)  # hard constraint: no bonus below C
    assert r(0.9, 1200.0) == pytest.approx(0.9 * 2.0 ** -0.07)
    soft = FlopsReward(constraint=600.0, exponent=-0.07, soft=True)
    assert soft(0.9, 300.0) == pytest.approx(0.9 * 0.5 ** -0.07)
    assert r(0.9, 1200.0, status="diverged") == 0.0
    with pytest.raises(ValueError, match="flops_constraint must be > 0"):
        FlopsReward(constraint=0.0)


class OptimizerSpace(TokenSpace):
    """A user module: the optimizer type (SGD or Adam), entering training through the recipe."""

    def __init__(self) -> None:
        super().__init__([2], kind="opt", names=["optimizer"])

    def apply(self, config: tuple[int, ...], recipe: Recipe) -> None:
        if config[0] == 1:
            recipe.make_optimizer = lambda params, hp: torch.optim.Adam(params, lr=hp.lr * 0.1)


def test_user_module_as_fourth_agent():
    env = automl_v0.parallel_env(agents=["aug", "nas", "hpo", "opt"], spaces={"opt": OptimizerSpace()}, epochs=1,
                                 train_seed=0)
    assert env.possible_agents == ["aug", "nas", "hpo", "opt"]
    env.reset(seed=0)
    actions = _actions(env)
    recipe = env.evaluator.recipe({a: env.spaces[a].decode(t) for a, t in {**actions, "opt": [1]}.items()})
    assert isinstance(recipe.make_optimizer([torch.nn.Parameter(torch.zeros(1))], recipe.hparams), torch.optim.Adam)
    sgd = env.evaluate({**actions, "opt": np.array([0])})
    adam = env.evaluate({**actions, "opt": np.array([1])})
    assert sgd.status == adam.status == "ok" and sgd.curve != adam.curve
    assert adam.pipeline["opt"] == {"optimizer": 1}


def test_evaluator_rejects_bad_settings():
    task = get_task("digits")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainEvaluator(task, task.make_spaces(), epochs=0)
    with pytest.raises(ValueError, match="unknown evaluator 'table'"):
        automl_v0.parallel_env(evaluator="table")
