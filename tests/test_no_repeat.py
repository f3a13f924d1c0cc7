"""The no-repeat protocol (:mod:`ma2ml.agents.base`): within a run every learner proposes new,
distinct pipelines as far as the space allows; it is recorded, resumable and can be turned off."""
from __future__ import annotations

import io
import json

import pettingzoo
import pytest
import torch

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.learners import learner_names, make_learner
from ma2ml.cli import main
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.bench.synthetic import SyntheticEvaluator, small_spaces

BUILT_IN = ["ma2ml", "ma2ml-onpolicy", "ma2ml-lite", "reinforce", "ppo", "a2c", "random", "evolution"]


def table_env():
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    env.reset(seed=0)
    return env


def tiny_env(tokens: int = 2, size: int = 2):
    """A synthetic game of 3 agents x ``tokens`` tokens of ``size`` choices (size**(3*tokens) pipelines)."""
    game = SyntheticEvaluator(spaces=small_spaces(tokens=tokens, size=size), game=3)
    env = parallel_env(evaluator=game, flops_constraint=game.flops)
    env.reset(seed=0)
    return env


def evaluated_rows(learner, batches) -> list[bytes]:
    return [learner.row_key(row) for b in batches for row in learner.joint(b.actions)]


def learn(name, env, budget, batch_size, seed=0, **kw):
    learner = make_learner(name, env, seed=seed)
    try:
        return learner, learner.learn(env, budget, batch_size, **kw)
    finally:
        learner.close()


def test_built_in_learners_are_all_registered():
    assert set(BUILT_IN) <= set(learner_names())


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_evaluation_of_a_run_is_a_new_pipeline(name):
    learner, batches = learn(name, table_env(), 200, 10, seed=3)
    rows = evaluated_rows(learner, batches)
    assert len(rows) == 200 and len(set(rows)) == 200
    assert learner.num_distinct == 200 and learner.no_repeat


@pytest.mark.parametrize("name", ["ma2ml", "reinforce", "evolution", "ppo"])
def test_repeats_come_back_when_the_protocol_is_off(name):
    """The protocol is what removes repeats: without it, these learners re-propose pipelines."""
    learner, batches = learn(name, table_env(), 200, 10, seed=3, no_repeat=False)
    rows = evaluated_rows(learner, batches)
    assert len(rows) == 200 and len(set(rows)) < 200 and not learner.no_repeat


@pytest.mark.parametrize("name", ["ma2ml", "random", "evolution", "a2c"])
def test_a_run_covers_a_small_space_once_then_repeats(name):
    env = tiny_env()  # 2**6 = 64 pipelines
    learner, batches = learn(name, env, 64, 8, seed=1)
    assert len(set(evaluated_rows(learner, batches))) == 64
    learner, batches = learn(name, env, 72, 8, seed=1)
    rows = evaluated_rows(learner, batches)
    assert len(rows) == 72 and len(set(rows)) == 64  # the space ran out: repeats are unavoidable


def test_unseen_rows_are_uniform_over_what_is_left():
    learner = make_learner("random", tiny_env(tokens=1, size=2), seed=0)  # 8 pipelines
    learner.remember(learner.layout.all_rows()[:6])
    rows = learner.unseen_rows(2)
    assert {learner.row_key(r) for r in rows} == {learner.row_key(r) for r in learner.layout.all_rows()[6:]}
    assert learner.unseen_left() == 2


@pytest.mark.parametrize("name", ["ma2ml", "evolution", "ppo"])
def test_a_resumed_run_keeps_its_seen_pipelines(name):
    env = table_env()
    whole, batches = learn(name, env, 120, 10, seed=5)
    first = make_learner(name, env, seed=5)
    first.learn(env, 60, 10)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    first.close()
    buffer.seek(0)
    second = make_learner(name, env, seed=5)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    rest = second.learn(env, 120, 10)
    second.close()
    assert evaluated_rows(second, rest) == evaluated_rows(whole, batches)[60:]
    assert second.num_distinct == 120


def test_old_checkpoints_ran_with_repeats():
    env = table_env()
    learner = make_learner("random", env, seed=0)
    learner.learn(env, 20, 10)
    state = learner.state_dict()
    del state["no_repeat"], state["seen"]
    restored = make_learner("random", env, seed=0)
    restored.load_state_dict(state)
    assert not restored.no_repeat and restored.num_distinct == 0


def test_learn_refuses_a_non_boolean_protocol():
    env = table_env()
    with pytest.raises(ValueError, match="no_repeat must be True or False"):
        make_learner("random", env).learn(env, 10, 5, no_repeat="yes")


def test_search_records_the_protocol_and_a_resume_keeps_it(tmp_path):
    base = ["search", "--env", "ma2ml/AutoML-DigitsBench-v0", "--env-arg", "table_seed=0", "--learner", "ma2ml",
            "--batch-size", "10", "--seed", "2"]
    assert main([*base, "--budget", "60", "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "run.json").read_text())["no_repeat"] is True
    assert main([*base, "--budget", "60", "--allow-repeats", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "run.json").read_text())["no_repeat"] is False
    assert main([*base, "--budget", "80", "--out", str(tmp_path / "b")]) == 0  # extends, keeping its protocol
    assert json.loads((tmp_path / "b" / "run.json").read_text())["no_repeat"] is False
    assert main([*base, "--budget", "80", "--allow-repeats", "--out", str(tmp_path / "a")]) == 2  # a change: refused
    rows = [json.dumps(json.loads(line)["tokens"], sort_keys=True)
            for line in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == len(set(rows)) == 60
