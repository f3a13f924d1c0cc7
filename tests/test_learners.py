"""Learners: the common interface on every env, learning sanity, monotonic improvement, determinism, resume."""
from __future__ import annotations

import io
import statistics

import numpy as np
import pettingzoo
import pytest
import torch

import ma2ml.envs
from ma2ml.learners import learner_config, learner_names, make_learner, register_learner
from ma2ml.agents.base import Learner
from ma2ml.baselines.vec_env import AutoMLVecEnv
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.bench.synthetic import SyntheticEvaluator, small_spaces
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.tasks.data import DatasetNotFoundError
from ma2ml.envs.vector import VectorAutoML

LEARNERS = learner_names()


def synthetic_env(seed: int = 0, **kw) -> object:
    """The synthetic game with the FLOPs constraint at its FLOPs, so reward == its accuracy."""
    game = SyntheticEvaluator(game=seed, **kw)
    env = parallel_env(evaluator=game, flops_constraint=game.flops)
    env.reset(seed=seed)
    return env


def construct(env_id: str) -> object | None:
    """A registered env with one training epoch per evaluation; None if it needs a dataset folder."""
    try:
        env = pettingzoo.make("parallel", env_id, epochs=1)
    except DatasetNotFoundError:
        return None
    except UserError:  # a table env: the table decides the training, so epochs= does not apply
        env = pettingzoo.make("parallel", env_id)
    env.reset(seed=0)
    return env


DATASET_FREE_ENV_IDS = [env_id for env_id in ma2ml.envs.env_ids() if construct(env_id) is not None]
"""Registered ids whose construction needs no dataset folder (digits, the benchmark table, ...)."""


def run(learner: Learner, env: object, budget: int, batch_size: int) -> list[float]:
    try:
        return [r for b in learner.learn(env, budget, batch_size) for r in b.rewards]
    finally:
        learner.close()


def test_every_config_field_is_typed_and_bounded():
    """The one validation routine (ma2ml.envs.core.fields) knows every built-in learner's fields: each is a
    bool, a Literal, or a number or tuple of numbers with a Range, so no value of the wrong type or size
    reaches a network (a registry-wide check: a new field without a Range fails here)."""
    from ma2ml.envs.core.fields import field_rules

    for name in learner_names():
        config = learner_config(name)
        for rule in field_rules(type(config)):
            assert rule.kind in (bool, int, float, str, tuple), (name, rule)
            if rule.kind in (int, float, tuple):
                assert rule.range is not None, (name, rule.name)
                assert rule.range.high <= 10_000_000, (name, rule.name)  # no gigabyte allocations
            if rule.kind is tuple:
                assert rule.length is not None, (name, rule.name)
            ok, _ = rule.coerce(getattr(config, rule.name))
            assert ok, (name, rule.name)  # the defaults are valid


def test_registry():
    assert LEARNERS == ["ma2ml", "ma2ml-onpolicy", "ma2ml-lite", "reinforce", "ppo", "a2c", "random", "evolution",
                        "independent", "tpe", "mappo", "ippo", "qmix", "vdn"]
    with pytest.raises(ValueError, match=r"unknown learner 'nope'; registered learners are \['ma2ml'"):
        make_learner("nope", synthetic_env())
    with pytest.raises(ValueError, match=r"learner 'ma2ml' has no setting \['bogus'\]; its settings are \['reevaluate_share'"):
        learner_config("ma2ml", bogus=1)
    with pytest.raises(ValueError, match=r"MA2MLConfig.kl_coef = -1 is invalid; valid values are finite numbers in \[0, 100\]"):
        learner_config("ma2ml", kl_coef=-1)
    with pytest.raises(ValueError, match="already registered"):
        register_learner("ma2ml", "x:y", "x:z")
    assert learner_config("ma2ml-lite").kl_coef == 0 and not learner_config("ma2ml-lite").fresh_samples
    assert not learner_config("ma2ml-onpolicy").replay and learner_config("ma2ml").replay


def test_register_a_user_learner(monkeypatch):
    import ma2ml.learners as registry
    from ma2ml.baselines.random_search import RandomSearch, RandomSearchConfig

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_learner("mine", RandomSearch, RandomSearchConfig, "uniform, registered by a user")
    assert learner_names()[-1] == "mine" and registry.learner_spec("mine").description.startswith("uniform")
    assert isinstance(make_learner("mine", synthetic_env(), seed=0), RandomSearch)


@pytest.mark.parametrize("env_id", ["synthetic", *DATASET_FREE_ENV_IDS])
@pytest.mark.parametrize("name", LEARNERS)
def test_every_learner_on_every_env(name, env_id):
    env = synthetic_env() if env_id == "synthetic" else construct(env_id)
    learner = make_learner(name, env, seed=0)
    seen = []
    batches = learner.learn(env, budget=3, batch_size=2, callback=seen.append)
    learner.close()
    assert [len(b.actions) for b in batches] == [2, 1] and seen == batches
    assert learner.num_evaluations == 3 and learner.num_batches == 2
    for b in batches:
        for actions, record in zip(b.actions, b.records, strict=True):
            assert set(actions) == set(env.possible_agents)
            for a in env.possible_agents:
                assert env.action_space(a).contains(actions[a])
            assert record.status in ("ok", "diverged", "oom", "timeout", "failed")
        assert b.rewards == [env.reward(r) for r in b.records]


def test_ask_tell_validation():
    env = synthetic_env()
    learner = make_learner("ma2ml", env, seed=0)
    with pytest.raises(ValueError, match="positive integer"):
        learner.ask(0)
    actions = learner.ask(2)
    with pytest.raises(ValueError, match="counts must match"):
        learner.tell(actions, [0.5])
    with pytest.raises(ValueError, match="non-finite"):
        learner.tell(actions, [0.5, float("nan")])
    bad = [{**actions[0], "aug": np.array([9, 0])}, actions[1]]
    with pytest.raises(ValueError, match="does not fit the token sizes"):
        learner.tell(bad, [0.5, 0.5])
    other = parallel_env(evaluator=SyntheticEvaluator(spaces=small_spaces(tokens=3)))
    with pytest.raises(ValueError, match="this learner was built for agents"):
        learner.learn(other, 2, 2)
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        learner.learn(env, 0, 2)


def test_learners_on_agent_subsets_and_user_modules():
    spaces = {"opt": small_spaces(tokens=3, size=5)["aug"], "nas": small_spaces()["nas"]}
    game = SyntheticEvaluator(spaces=spaces, game=1)
    env = parallel_env(evaluator=game)
    env.reset(seed=1)
    for name in LEARNERS:
        learner = make_learner(name, env, seed=1)
        run(learner, env, 4, 2)
        assert learner.agents == ["opt", "nas"]


# -- learning sanity -------------------------------------------------------------------------------
SANITY_BUDGET, SANITY_BATCH, SANITY_SEEDS = 1024, 32, range(5)
"""A game per seed: 3 agents x 2 tokens x 4 choices (4,096 pipelines), pairwise terms between
tokens of different agents (std 1.5) stronger than the per-token terms (std 1); the budget is
32 batches of 32, a quarter of the space."""


def best_and_optimum(name: str, seed: int) -> tuple[float, float]:
    env = synthetic_env(seed)
    rewards = run(make_learner(name, env, seed=seed), env, SANITY_BUDGET, SANITY_BATCH)
    return max(rewards), env.evaluator.optimum()[0]


@pytest.fixture(scope="module")
def random_median_best() -> float:
    return statistics.median(best_and_optimum("random", s)[0] for s in SANITY_SEEDS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ma2ml", "ma2ml-lite", "reinforce"])
def test_learning_sanity(name, random_median_best):
    results = [best_and_optimum(name, s) for s in SANITY_SEEDS]
    hits = sum(best >= opt - 1e-12 for best, opt in results)
    assert hits >= 3, f"{name} reached the optimum in {hits} of 5 games: {results}"
    assert statistics.median(best for best, _ in results) > random_median_best


# -- the MA2ML estimators, the Polyak step and monotonic improvement under the exact Q:
#    tests/test_ma2ml_estimators.py


# -- determinism and resume -----------------------------------------------------------------------
def trajectory(name: str, seed: int, budget: int = 12, batch_size: int = 4) -> list[tuple]:
    env = synthetic_env(seed, noise=0.05)
    learner = make_learner(name, env, seed=seed)
    try:
        batches = learner.learn(env, budget, batch_size)
    finally:
        learner.close()
    return [(b.index, [{a: t.tolist() for a, t in x.items()} for x in b.actions], b.rewards) for b in batches]


@pytest.mark.parametrize("name", LEARNERS)
def test_same_seed_same_run(name):
    first = trajectory(name, 7)
    assert trajectory(name, 7) == first
    if name != "random":
        assert trajectory(name, 8) != first


@pytest.mark.parametrize("name", LEARNERS)
def test_resume_continues_identically(name):
    budget, batch = 16, 4
    env = synthetic_env(5, noise=0.05)
    straight = make_learner(name, env, seed=5)
    full = straight.learn(env, budget, batch)
    straight.close()

    env = synthetic_env(5, noise=0.05)
    first = make_learner(name, env, seed=5)
    head = first.learn(env, 8, batch)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    first.close()
    resumed = make_learner(name, env, seed=5)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=False))
    tail = resumed.learn(env, budget, batch)
    resumed.close()
    got = [(b.index, [x[a].tolist() for x in b.actions for a in x], b.rewards) for b in head + tail]
    want = [(b.index, [x[a].tolist() for x in b.actions for a in x], b.rewards) for b in full]
    assert got == want


def test_checkpoint_mismatch_is_an_error():
    env = synthetic_env()
    state = make_learner("ma2ml", env, seed=0).state_dict()
    with pytest.raises(ValueError, match="checkpoint is of 'MA2ML', not 'RandomSearch'"):
        make_learner("random", env).load_state_dict(state)
    with pytest.raises(ValueError, match="checkpoint config"):
        make_learner("ma2ml", env, kl_coef=0.5).load_state_dict(state)


def test_learners_leave_global_rng_alone():
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    for name in LEARNERS:
        trajectory(name, 1, budget=8)
    assert torch.equal(torch.rand(3), expected_torch) and np.array_equal(np.random.rand(3), expected_np)


# -- the SB3 learners and the vector interface ---------------------------------------------------------
def test_sb3_worker_thread_stops_and_step_size_is_enforced():
    env = synthetic_env()
    learner = make_learner("ppo", env, seed=0)
    actions = learner.ask(4)
    assert learner.num_envs == 4 and learner._thread.is_alive()
    with pytest.raises(ValueError, match="only 0 of SB3's current step of 4 actions are left"):
        learner.ask(1)
    with pytest.raises(ValueError, match="only be told the actions it was asked for"):
        learner.tell(actions[::-1], [0.1, 0.2, 0.3, 0.4])
    learner.tell(actions[:2], [0.1, 0.2])
    thread = learner._thread
    learner.close()
    assert not thread.is_alive()


def test_vector_interface_and_vecenv():
    env = synthetic_env()
    batch = [{a: env.action_space(a).sample() for a in env.possible_agents} for _ in range(3)]
    rewards, records = VectorAutoML(env).step(batch)
    assert rewards.shape == (3,) and rewards.tolist() == [env.reward(r) for r in records]
    vec = AutoMLVecEnv(env, 3)
    obs = vec.reset()
    assert obs.shape == (3, len(env.state()))
    joint = np.stack([np.concatenate([b[a] for a in env.possible_agents]) for b in batch])
    obs, rew, dones, infos = vec.step(joint)
    assert dones.all() and np.allclose(rew, rewards) and infos[0]["status"] == "ok"
    np.testing.assert_array_equal(infos[1]["terminal_observation"], env.state())
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        AutoMLVecEnv(env, 0)


def test_sb3_runs_directly_on_the_vecenv():
    from stable_baselines3 import A2C

    env = synthetic_env()
    model = A2C("MlpPolicy", AutoMLVecEnv(env, 4), n_steps=1, seed=0, device="cpu")
    model.learn(total_timesteps=16)
    assert model.num_timesteps == 16
