"""The token-level view (``ma2ml.envs.token_v0``): PettingZoo conformance, masks, rewards, registration."""
from __future__ import annotations

import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

import ma2ml.envs
from ma2ml.envs import automl_v0, token_env, token_v0
from ma2ml.bench.synthetic import SyntheticEvaluator, small_spaces

TABLE = "ma2ml/TokenAutoML-DigitsBench-v0"


def table(**kw) -> token_v0.TokenAutoMLEnv:
    return pettingzoo.make("parallel", TABLE, table_seed=0, **kw)


def uniform(**kw) -> token_v0.TokenAutoMLEnv:
    """A synthetic game whose tokens all have 4 choices and whose agents all have 2 tokens:
    every action of ``Discrete(4)`` is legal at every step (no mask bites)."""
    return token_env(automl_v0.parallel_env(evaluator=SyntheticEvaluator(spaces=small_spaces(), game=0, noise=0.05)),
                     **kw)


def masked_random(env, obs, rng) -> dict[str, int]:
    return {a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"]))) for a in env.agents}


@pytest.mark.parametrize("observe", ["own", "all"])
def test_parallel_api(observe):
    parallel_api_test(table(observe=observe), num_cycles=10)


def test_parallel_api_uniform_game():
    parallel_api_test(uniform(), num_cycles=10)


def test_parallel_seed_uniform_game():
    # PettingZoo's parallel seed test samples actions without the mask: on this game all are legal
    parallel_seed_test(uniform, num_cycles=10)


def test_parallel_seed_table_terminating_on_illegal_actions():
    # on the table most unmasked samples are illegal: the "terminate" mode ends those episodes, deterministically
    parallel_seed_test(lambda: table(illegal_action="terminate"), num_cycles=10)


def test_aec_api():
    api_test(pettingzoo.make("aec", TABLE, table_seed=0), num_cycles=10)


def test_every_family_has_a_token_view():
    families = {i.removeprefix("ma2ml/AutoML-") for i in ma2ml.envs.env_ids()}
    assert {i.removeprefix("ma2ml/TokenAutoML-") for i in ma2ml.envs.token_env_ids()} == families
    assert not set(ma2ml.envs.token_env_ids()) & set(ma2ml.envs.env_ids())  # learners take pipeline envs only
    env = pettingzoo.make("parallel", "ma2ml/TokenAutoML-Digits-v0", epochs=1)
    assert env.possible_agents == ["aug", "nas", "hpo"]
    assert env.layout.steps == max(len(env.env.action_space(a).nvec) for a in env.possible_agents)
    assert env.layout.actions == max(int(env.env.action_space(a).nvec.max()) for a in env.possible_agents)


def test_spaces_layout_and_observations():
    env = table()
    assert env.layout.steps == 4 and env.layout.actions == 4 and env.layout.observation_size == 6 + 4 + 3 + 24
    for a in env.possible_agents:
        assert env.action_space(a) is env.action_space(a) and env.observation_space(a) is env.observation_space(a)
    obs, infos = env.reset(seed=0)
    assert infos == {a: {} for a in env.possible_agents}
    for a in env.possible_agents:
        assert env.observation_space(a).contains(obs[a])
    np.testing.assert_array_equal(obs["aug"]["action_mask"], [1, 1, 1, 1])
    np.testing.assert_array_equal(obs["nas"]["action_mask"], [1, 1, 1, 0])
    np.testing.assert_array_equal(obs["hpo"]["action_mask"], [1, 1, 0, 0])
    np.testing.assert_array_equal(obs["aug"]["observation"][:6], env.env.state())
    assert env.state().shape == env.state_space.shape == (6 + 4 + 24,)


def test_masks_no_ops_and_visibility():
    own, everyone = table(observe="own"), table(observe="all")
    own.reset(seed=0)
    everyone.reset(seed=0)
    actions = [{"aug": 3, "nas": 2, "hpo": 1}, {"aug": 0, "nas": 1, "hpo": 0}, {"aug": 2, "nas": 0, "hpo": 3}]
    for step in actions:
        obs_own, *_ = own.step(step)
        obs_all, *_ = everyone.step(step)
    # aug and hpo are done after two tokens: their mask offers the no-op only, and what they send is ignored
    np.testing.assert_array_equal(obs_own["hpo"]["action_mask"], [1, 0, 0, 0])
    assert own.tokens()["hpo"].tolist() == [1, 0] and own.tokens()["aug"].tolist() == [3, 0]
    assert own.tokens()["nas"].tolist() == [2, 1, 0, -1]
    lay = own.layout
    chosen = lay.chosen(own._tokens)
    d = lay.descriptor_size + lay.steps + len(lay.agents)
    nas_block = slice(d + 8, d + 20)
    np.testing.assert_array_equal(obs_all["hpo"]["observation"][d:], chosen)
    assert obs_own["hpo"]["observation"][nas_block].sum() == 0 and obs_own["nas"]["observation"][nas_block].sum() == 3
    assert obs_own["nas"]["observation"][d:d + 8].sum() == 0
    # the step one-hot and the agent one-hot
    assert obs_own["nas"]["observation"][6:10].tolist() == [0, 0, 0, 1]
    assert obs_own["nas"]["observation"][10:13].tolist() == [0, 1, 0]


def test_reward_is_the_pipeline_envs():
    env, rng = table(), np.random.default_rng(1)
    base = ma2ml.envs.make_parallel("ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    for episode in range(5):
        obs, _ = env.reset(seed=episode)
        rewards = []
        while env.agents:
            obs, rew, term, trunc, infos = env.step(masked_random(env, obs, rng))
            rewards.append(rew)
            assert len(set(rew.values())) == 1 and not any(trunc.values())
        assert [r["aug"] for r in rewards[:-1]] == [0.0] * 3 and all(term.values())
        base.reset(seed=episode)
        _, base_rew, _, _, base_infos = base.step(env.tokens())
        assert rewards[-1] == base_rew and infos == base_infos
        assert env.last_record.pipeline == base.last_record.pipeline
    with pytest.raises(ValueError, match="finished episode"):
        env.step({a: 0 for a in env.possible_agents})


def test_illegal_actions():
    env = table()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"agent 'hpo': token 0 \(lr\) = 3 is out of range; valid values are 0..1"):
        env.step({"aug": 0, "nas": 0, "hpo": 3})
    for bad, match in [({"aug": 0, "nas": 0}, "one action for each agent"),
                       ({"aug": 4, "nas": 0, "hpo": 0}, r"agent 'aug': action 4 is not in Discrete\(4\)"),
                       ({"aug": 1.5, "nas": 0, "hpo": 0}, "not in Discrete"),
                       ({"aug": True, "nas": 0, "hpo": 0}, "not in Discrete")]:
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    assert env._t == 0 and (env._tokens == -1).all()  # nothing was written
    env.step({"aug": np.int64(1), "nas": 2.0, "hpo": np.array(1)})  # integers in any form
    terminating = table(illegal_action="terminate")
    terminating.reset(seed=0)
    _, rew, term, _, infos = terminating.step({"aug": 0, "nas": 3, "hpo": 0})
    assert rew == {a: 0.0 for a in terminating.possible_agents} and all(term.values()) and terminating.agents == []
    assert infos["nas"]["status"] == "illegal" and "agent 'nas'" in infos["nas"]["error"]
    assert terminating.last_record is None  # nothing was evaluated


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"observe must be one of \['own', 'all'\]"):
        table(observe="mine")
    with pytest.raises(ValueError, match=r"illegal_action must be one of \['raise', 'terminate'\]"):
        table(illegal_action="ignore")
    with pytest.raises(ValueError, match="unknown env"):
        token_v0.parallel_env(env=TABLE)
