"""The interaction-blind control (``independent``): per-agent Thompson-sampling bandits that credit the
shared reward to every agent's pick alike."""
from __future__ import annotations

import numpy as np
import pytest

from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.envs.core.errors import UserError
from ma2ml.learners import make_learner


def _regret(interaction: float, seed: int, budget: int = 300, name: str = "independent", **settings) -> float:
    ev = SyntheticEvaluator(game=seed, interaction=interaction)
    env = parallel_env(evaluator=ev)
    env.reset(seed=seed)
    learner = make_learner(name, env, seed=seed, **settings)
    learner.learn(env, budget=budget, batch_size=8)
    return ev.optimum()[0] - ev.score(learner.joint([learner.recommend()])[0].tolist())


def test_it_solves_a_game_without_interactions():
    """Additive rewards decompose by agent: each agent's bandit alone finds its best tuple (4,096 joint
    pipelines, 300 evaluations), where random search does not."""
    assert [_regret(0.0, seed) for seed in range(4)] == [0.0] * 4
    assert np.mean([_regret(0.0, seed, name="random") for seed in range(4)]) > 0.02


def test_interactions_are_what_it_cannot_see():
    """The same games with strong pairwise terms between agents: blind to them, it is further from the
    optimum after 120 evaluations than on the additive games (8 fixed games each: this cannot flake)."""
    additive = np.mean([_regret(0.0, seed, budget=120) for seed in range(8)])
    interacting = np.mean([_regret(3.0, seed, budget=120) for seed in range(8)])
    assert interacting > 1.5 * additive


def test_a_large_agent_is_factorised_into_one_bandit_per_token():
    env = parallel_env(evaluator=SyntheticEvaluator(game=1, interaction=0.0))
    learner = make_learner("independent", env, seed=0, max_arms=8)  # each agent has 16 tuples: factorised
    assert [c.tolist() for c in learner.units] == [[0], [1], [2], [3], [4], [5]]
    whole = make_learner("independent", env, seed=0)
    assert [c.tolist() for c in whole.units] == [[0, 1], [2, 3], [4, 5]]
    assert _regret(0.0, 1, max_arms=8) < 0.01  # still additive: per-token bandits get there too


def test_its_settings_are_checked():
    env = parallel_env(evaluator=SyntheticEvaluator())
    with pytest.raises(UserError, match="prior_count"):
        make_learner("independent", env, prior_count=0.0)
