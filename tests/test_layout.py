"""The joint-token layout: the one place tokens cross an agent boundary."""
from __future__ import annotations

import numpy as np
import pettingzoo
import pytest

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.bench import bench_spaces, pipeline_index, pipeline_tokens
from ma2ml.envs.core.layout import JointLayout


def test_split_join_round_trip_and_slices():
    layout = JointLayout.from_nvec({"aug": [4, 4], "nas": [3, 3, 3, 3], "hpo": [2, 2]})
    assert layout.agents == ("aug", "nas", "hpo") and layout.size == 8 and layout.pipelines == 5184
    assert layout.slices == {"aug": slice(0, 2), "nas": slice(2, 6), "hpo": slice(6, 8)}
    rows = np.random.default_rng(0).integers(0, layout.nvec, size=(20, 8))
    assert np.array_equal(layout.join_rows(layout.split_rows(rows)), rows)
    assert layout.join_rows([]).shape == (0, 8) and layout.split_rows(np.zeros((0, 8))) == []
    assert layout.owner(5) == ("nas", 3) and layout.owner(6) == ("hpo", 0)
    with pytest.raises(ValueError, match=r"names agents \['aug'\]; the agents are \['aug', 'nas', 'hpo'\]"):
        layout.join({"aug": [0, 0]})
    with pytest.raises(ValueError, match="has 9 tokens; the layout has 8"):
        layout.join({"aug": [0, 0, 0], "nas": [0] * 4, "hpo": [0, 0]})


def test_index_is_the_tables_numbering_and_inverts():
    spaces = bench_spaces()
    layout = JointLayout.of_spaces(spaces)
    rows = layout.all_rows()
    assert rows.shape == (5184, 8)
    assert np.array_equal(layout.index(rows), np.arange(5184))
    assert np.array_equal(pipeline_index(spaces, rows), np.arange(5184))
    for i in (0, 1, 2591, 5183):
        tokens = layout.tokens_at(i)
        assert {a: t.tolist() for a, t in tokens.items()} == {a: t.tolist() for a, t in pipeline_tokens(spaces, i).items()}
    bad = rows[:1].copy()
    bad[0, 7] = 2
    with pytest.raises(ValueError, match=r"agent 'hpo': token 1 \(batch_size\) = 2 is out of range; valid values are "
                                         r"0..1 \(\[64, 128\]\)"):
        layout.index(bad)
    with pytest.raises(ValueError, match="pipeline index 5184 is out of range"):
        layout.tokens_at(5184)


def test_every_view_shares_the_envs_layout():
    from ma2ml.learners import make_learner
    from ma2ml.baselines.vec_env import AutoMLVecEnv
    from ma2ml.envs.joint import JointAutoMLEnv

    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0")
    env.reset(seed=0)
    layout = JointLayout.of(env)
    assert make_learner("random", env).layout == layout == AutoMLVecEnv(env, 2).layout
    assert env.evaluator.layout == layout
    joint = JointAutoMLEnv(evaluator=env.evaluator)
    assert joint.layout == layout and np.array_equal(joint.action_space.nvec, layout.nvec)


def test_the_envs_implement_the_learner_protocol_and_others_are_refused():
    from ma2ml.learners import make_learner
    from ma2ml.envs.core.protocol import AutoMLEnv

    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0")
    assert isinstance(env, AutoMLEnv)
    assert isinstance(pettingzoo.make("parallel", "ma2ml/AutoML-Digits-v0"), AutoMLEnv)

    class NotOurs:
        possible_agents = ["a"]

        def action_space(self, agent):
            return env.action_space("aug")

        def state(self):
            return env.state()

    learner = make_learner("random", env)
    with pytest.raises(ValueError, match=r"learners need an ma2ml env .*NotOurs lacks \['evaluate_batch', 'reward'\]"):
        learner.learn(NotOurs(), budget=2, batch_size=1)


def test_step_infos_and_vecenv_infos_have_one_shape():
    from ma2ml.envs.vector import VectorAutoML

    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    env.reset(seed=0)
    actions = {a: env.action_space(a).sample() for a in env.possible_agents}
    _, rewards, _, _, infos = env.step(actions)
    _, vec_infos = VectorAutoML(env).evaluate([actions])
    assert vec_infos[0] == infos["nas"] and infos["nas"]["reward"] == rewards["nas"]
    assert "train_seconds" not in infos["nas"]


def test_the_env_never_changes_an_evaluator_it_was_given():
    from ma2ml.envs import automl_v0
    from ma2ml.bench.synthetic import SyntheticEvaluator
    from ma2ml.runtime.executors import InProcessExecutor

    ev = SyntheticEvaluator(game=0)
    executor = InProcessExecutor()
    env = automl_v0.parallel_env(evaluator=ev, executor=executor)
    assert ev.executor is None and env.evaluator.executor is executor and env.evaluator is not ev
    assert automl_v0.parallel_env(evaluator=ev).evaluator is ev  # no executor: the same object


@pytest.mark.parametrize("runtime", [{}, {"executor": "inprocess"}, {"store": "STORE", "executor": "inprocess"}])
def test_tokens_are_checked_once_and_decoded_once_per_evaluation(tmp_path, monkeypatch, runtime):
    """One validation (``checked_tokens``) and one decode (in ``Evaluator.evaluate``) per agent and evaluation,
    whichever way the evaluation runs (in place, through an executor, through the store)."""
    from ma2ml.envs import automl_v0
    from ma2ml.bench.synthetic import SyntheticEvaluator
    from ma2ml.envs.spaces import ModuleSpace

    calls = []
    original = ModuleSpace.check

    def counting(self, tokens, agent=None):
        calls.append(agent)
        return original(self, tokens, agent)

    kwargs = {k: str(tmp_path / "e.sqlite") if v == "STORE" else v for k, v in runtime.items()}
    env = automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), **kwargs)
    env.reset(seed=0)
    batch = [{a: env.action_space(a).sample() for a in env.possible_agents} for _ in range(3)]
    monkeypatch.setattr(ModuleSpace, "check", counting)
    env.evaluate_batch(batch)
    assert sorted(calls) == sorted(env.possible_agents * 3 * 2), calls
    env.close()
