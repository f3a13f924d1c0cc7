"""The recommendation (issue 25): every learner names the pipeline it stands behind; by default the best mean
of its own observations, preferring pipelines told more than once over one lucky draw."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.envs.core.errors import UserError
from ma2ml.learners import learner_names, make_learner


def _env(noise: float = 0.0):
    env = parallel_env(evaluator=SyntheticEvaluator(game=3, noise=noise))
    env.reset(seed=0)
    return env


def _actions(learner, rows):
    return learner.split(np.asarray(rows, dtype=np.int64))


def test_a_repeated_best_mean_beats_the_luckiest_single_draw():
    env = _env()
    learner = make_learner("random", env, seed=0)
    lucky, steady, other = [0] * 6, [1] * 6, [2] * 6
    learner.tell(_actions(learner, [lucky, steady, other]), [0.95, 0.80, 0.60])
    assert learner.recommend()["aug"].tolist() == [0, 0]  # only single draws: the best observed
    learner.tell(_actions(learner, [steady, other, other]), [0.78, 0.70, 0.72])
    # steady: mean 0.79 over two; other: mean 0.673 over three; lucky: 0.95 once
    assert learner.joint([learner.recommend()]).tolist() == [steady]
    assert {tuple(r): (round(m, 4), c) for r, m, c in learner.observations()} == {
        tuple(lucky): (0.95, 1), tuple(steady): (0.79, 2), tuple(other): (0.6733, 3)}


def test_without_observations_it_is_one_clear_error():
    learner = make_learner("random", _env(), seed=0)
    with pytest.raises(UserError, match="recommend\\(\\) needs at least one told evaluation"):
        learner.recommend()


def test_the_recommendation_survives_a_checkpoint():
    env = _env(noise=0.05)
    learner = make_learner("evolution", env, seed=1)
    learner.learn(env, budget=40, batch_size=8, no_repeat=False)
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    restored = make_learner("evolution", env, seed=1)
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert {a: v.tolist() for a, v in restored.recommend().items()} == \
        {a: v.tolist() for a, v in learner.recommend().items()}
    assert [(r.tolist(), m, c) for r, m, c in restored.observations()] == \
        [(r.tolist(), m, c) for r, m, c in learner.observations()]


@pytest.mark.parametrize("name", learner_names())
def test_every_learner_recommends_a_pipeline_it_evaluated(name):
    env = _env(noise=0.02)
    learner = make_learner(name, env, seed=0)
    learner.learn(env, budget=24, batch_size=8)
    pick = learner.recommend()
    assert set(pick) == set(env.possible_agents)
    seen = {tuple(r) for r, _, _ in learner.observations()}
    assert tuple(learner.joint([pick])[0]) in seen
    learner.close()
