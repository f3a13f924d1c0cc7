"""Bad input through the env API is one ``UserError`` line (never a ``TypeError`` from inside), and
the integral inputs a NumPy user passes (``np.int64`` seeds, NumPy token arrays) just work.

Agent keys of any type, masked token arrays, ``evaluate_batch`` with no list, seeds of every kind,
dict subclasses, 2-D token arrays and tokens as strings, on the table env (the fast evaluator), its
single-agent ``JointAutoML`` wrapper and the vector interface.
"""
from __future__ import annotations

import re

import gymnasium
import numpy as np
import pettingzoo
import pytest

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.records import MAX_SEED, checked_batch, checked_seed
from ma2ml.envs.vector import VectorAutoML

AGENTS = "['aug', 'nas', 'hpo']"


@pytest.fixture(scope="module")
def env():
    return pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0")


def _good(env) -> dict[str, list[int]]:
    return {a: [0] * len(env.spaces[a].nvec) for a in env.possible_agents}


def _refused(call, match: str) -> str:
    with pytest.raises(UserError, match=match) as exc:
        call()
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# -- agent keys ------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [0, None, (1, 2), 2.5, b"aug"])
def test_non_string_agent_key_is_named_with_the_valid_agents(env, key):
    actions = {**_good(env), key: [0, 0]}
    del actions["aug"]
    env.reset(seed=0)
    _refused(lambda: env.step(actions), rf"actions name agents .* \(unknown: \[{re.escape(repr(key))}\]\); this env's "
                                        rf"agents are \['aug', 'nas', 'hpo'\]$")
    _refused(lambda: env.evaluator.evaluate(actions, 0), r"\(unknown: ")
    _refused(lambda: env.evaluator.evaluate_batch([actions], [0]), r"\(unknown: ")


def test_extra_and_missing_agents_name_both(env):
    actions = {**_good(env), 7: [0]}
    env.reset(seed=0)
    message = _refused(lambda: env.step(actions), "actions name agents")
    assert message == f"actions name agents ['aug', 'hpo', 'nas', 7] (unknown: [7]); this env's agents are {AGENTS}"


def test_dict_subclass_is_a_joint_action(env):
    class Actions(dict):
        pass

    env.reset(seed=0)
    _, rewards, *_ = env.step(Actions(_good(env)))
    env.reset(seed=0)
    assert env.step(_good(env))[1] == rewards


# -- token arrays ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint16, np.float64])
def test_masked_token_array_is_refused_naming_the_token(env, dtype):
    actions = _good(env)
    actions["nas"] = np.ma.masked_array(np.zeros(len(actions["nas"]), dtype=dtype), mask=[False, True] + [False] * (
        len(actions["nas"]) - 2))
    env.reset(seed=0)
    _refused(lambda: env.step(actions), r"^agent 'nas': token 1 is masked; give every token a value$")
    _refused(lambda: env.evaluator.evaluate_batch([actions], [0]), "token 1 is masked")


def test_masked_array_with_nothing_masked_is_plain_tokens(env):
    env.reset(seed=0)
    plain = env.step(_good(env))[1]
    env.reset(seed=0)
    assert env.step({a: np.ma.masked_array(v) for a, v in _good(env).items()})[1] == plain


@pytest.mark.parametrize("tokens, match", [
    (lambda n: np.zeros((1, n), dtype=np.int64), r"expected \d+ tokens .*, got shape \(1, \d+\)"),
    (lambda n: ["0"] * n, r"token 0 \(.*\) = '0' is not a token; tokens are integers"),
    (lambda n: "0" * n, r"expected \d+ tokens .*, got shape \(\)"),
    (lambda n: None, r"expected \d+ tokens .*, got shape \(\)"),
    (lambda n: {0: 0}, r"expected \d+ tokens .*, got shape \(\)"),
])
def test_tokens_of_the_wrong_shape_or_type_are_one_error(env, tokens, match):
    actions = _good(env)
    actions["hpo"] = tokens(len(actions["hpo"]))
    env.reset(seed=0)
    _refused(lambda: env.step(actions), "^agent 'hpo': " + match)


# -- evaluate_batch and seeds -------------------------------------------------------------------------
@pytest.mark.parametrize("batch, seeds, match", [
    (None, [0], r"^evaluate_batch: batch must be a list of joint actions \(agent -> tokens dicts\), got NoneType$"),
    (None, None, "batch must be a list"),
    (5, [0], "got int"),
    ("aug", [0], "got str"),
    ("good", [0], r"got dict; wrap one joint action in a list"),
    ("list", None, r"^evaluate_batch: seeds must be a list of training seeds, got NoneType$"),
    ("list", 3, "seeds must be a list of training seeds, got int"),
    ("list", np.zeros((1, 1), dtype=np.int64), r"got ndarray of shape \(1, 1\)"),
    ("list", [0, 1], "a batch of 1 joint actions needs as many seeds, got 2"),
    ("list", ["x"], r"^seeds\[0\] must be an integer in 0\.\.9223372036854775807 .*got 'x'$"),
    ("list", [0.5], r"seeds\[0\] must be an integer .*got 0\.5"),
    ("list", [1.0], r"seeds\[0\] must be an integer .*got 1\.0"),
    ("list", [True], r"not a bool\), got True"),
    ("list", [-1], r"got -1"),
    ("list", [2**70], r"got 1180591620717411303424"),
    ("list", [None], r"got None"),
])
def test_evaluate_batch_refuses_what_is_no_batch(env, batch, seeds, match):
    batch = {"good": _good(env), "list": [_good(env)]}.get(batch, batch) if isinstance(batch, str) else batch
    _refused(lambda: env.evaluator.evaluate_batch(batch, seeds), match)
    _refused(lambda: checked_batch(batch, seeds), match)


@pytest.mark.parametrize("seed", [np.int64(5), np.uint64(5), np.int32(5), np.uint8(5), 5, MAX_SEED,
                                  np.uint64(MAX_SEED)])
def test_integral_numpy_seeds_evaluate(env, seed):
    first = env.evaluator.evaluate(_good(env), seed)
    assert first == env.evaluator.evaluate(_good(env), int(seed))
    [batched] = env.evaluator.evaluate_batch([_good(env)], [seed])
    assert batched == first
    assert checked_seed(seed) == int(seed) and type(checked_seed(seed)) is int


@pytest.mark.parametrize("seed", [True, np.bool_(False), 5.0, np.float64(5), "5", None, -1, MAX_SEED + 1,
                                  np.uint64(2**64 - 1), [5], 1j])
def test_other_seeds_are_one_error(env, seed):
    match = r"^seed must be an integer in 0\.\.9223372036854775807 \(a Python or NumPy integer, not a bool\), got "
    _refused(lambda: env.evaluator.evaluate(_good(env), seed), match)
    _refused(lambda: checked_seed(seed), match)


def test_lookup_refuses_seeds_that_are_not_integers(env):
    joint = env.evaluator.joint([_good(env)])
    _refused(lambda: env.evaluator.lookup(joint, ["x"]), r"expected 1 seeds, integers in 0\.\.\d+, one per joint "
                                                         r"action; got <U1 of shape \(1,\)")
    _refused(lambda: env.evaluator.lookup(joint, [-3]), "got int64 of shape")
    assert env.evaluator.lookup(joint, np.array([3], dtype=np.uint64)).index.tolist() == [0]


# -- the single-agent wrapper and the vector interface ------------------------------------------------
@pytest.fixture(scope="module")
def joint():
    return gymnasium.make("ma2ml/JointAutoML-DigitsBench-v0")


@pytest.mark.parametrize("seed", [np.int64(5), np.uint64(5), np.int16(5)])
def test_joint_env_reset_takes_numpy_integer_seeds(joint, seed):
    obs, _ = joint.reset(seed=seed)
    action = joint.action_space.sample()
    reward = joint.step(action)[1]
    joint.reset(seed=5)
    assert joint.step(action)[1] == reward


@pytest.mark.parametrize("seed", [True, 5.0, "5", -1, np.uint64(2**64 - 1)])
def test_joint_env_reset_refuses_other_seeds(joint, seed):
    _refused(lambda: joint.reset(seed=seed), r"^seed must be an integer in 0\.\.")


def test_joint_env_refuses_a_masked_action(joint):
    joint.reset(seed=0)
    action = np.ma.masked_array(np.zeros(joint.action_space.shape, dtype=np.int64), mask=True)
    _refused(lambda: joint.step(action), r"^agent 'aug': token 0 is masked")


@pytest.mark.parametrize("batch, match", [(None, "got NoneType"), (7, "got int"), ("abc", "got str"),
                                          ({"aug": [0, 0]}, "got dict; wrap one joint action in a list")])
def test_vector_step_refuses_what_is_no_batch(env, batch, match):
    _refused(lambda: VectorAutoML(env).step(batch), r"^step: batch must be a list of joint actions .*" + match)


def test_vector_step_takes_any_iterable_of_joint_actions(env):
    rewards, records = VectorAutoML(env).step(iter([_good(env), _good(env)]))
    assert rewards.shape == (2,) and len(records) == 2


def test_parallel_env_reset_takes_numpy_integer_seeds(env):
    env.reset(seed=np.int64(5))
    with pytest.raises(UserError, match="seed must be an integer"):
        env.reset(seed=True)
