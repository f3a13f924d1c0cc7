"""Bad input to the env is one clear ``ValueError`` at the first place it can be seen.

Tokens (every entry point, training env and table env), the device, the dataset folder and
its batch files, the CIFAR download, the reward arguments that the observation shows, and the
state space that PettingZoo's ``state_test`` needs. Nothing here trains a network.
"""
from __future__ import annotations

import math
import os
import pickle
import re
import urllib.error
from pathlib import Path

import gymnasium
import numpy as np
import pettingzoo
import pytest
import torch
from pettingzoo.test import state_test

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.envs import automl_v0, digitsbench_v0
from ma2ml.bench.synthetic import SyntheticEvaluator
from ma2ml.envs.core.evaluator import resolve_device
from ma2ml.envs.joint import JointAutoMLEnv
from ma2ml.envs.tasks import get_task
from ma2ml.envs.tasks.data import DatasetNotFoundError, download_cifar, load_cifar
from ma2ml.training.evaluators import TrainEvaluator

BAD_TOKENS = ["a", None, 1j, 2**70, True, False, 0.5, math.nan, math.inf, -1, [0]]
"""Tokens every entry point refuses: not integers (bools included), or out of range."""


@pytest.fixture
def no_training(monkeypatch):
    """The training env's trainer, replaced by one that fails the test if anything reaches it."""
    calls: list[object] = []

    def trained(self, configs, seed):
        calls.append(configs)
        raise AssertionError("a bad token reached training")

    monkeypatch.setattr(TrainEvaluator, "_evaluate", trained)
    yield calls
    assert calls == [], "a bad token was trained instead of refused"


def _train_env(**kw):
    return pettingzoo.make("parallel", "ma2ml/AutoML-Digits-v0", epochs=1, **kw)


def _table_env(**kw):
    return pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", **kw)


def _with_bad_token(env, bad) -> tuple[dict[str, list], str]:
    """A joint action whose last agent's first token is ``bad``, and the error that must name it."""
    actions: dict[str, list] = {a: [0] * len(env.spaces[a].nvec) for a in env.possible_agents}
    agent = env.possible_agents[-1]
    space = env.spaces[agent]
    actions[agent][0] = bad
    shown = re.escape(str(bad) if isinstance(bad, (int, float)) and not isinstance(bad, bool) else repr(bad))
    match = (rf"agent '{agent}': token 0 \({re.escape(space.token_names[0])}\) = {shown} "
             rf"is (out of range|not a token).*valid values are 0\.\.{space.nvec[0] - 1}")
    return actions, match


def _one_line(exc: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(exc.value)


# -- 1. tokens ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_TOKENS, ids=repr)
@pytest.mark.parametrize("make", [_train_env, _table_env], ids=["train", "table"])
def test_bad_token_is_one_error_at_every_entry_point(make, bad, no_training):
    env = make()
    actions, match = _with_bad_token(env, bad)
    env.reset(seed=0)
    for call in (lambda: env.step(actions), lambda: env.evaluate(actions), lambda: env.evaluate_batch([actions])):
        with pytest.raises(ValueError, match=match) as exc:
            call()
        _one_line(exc)
    assert env.agents == env.possible_agents  # the refused step did not end the episode
    joint = JointAutoMLEnv(evaluator=env.evaluator)
    joint.reset(seed=0)
    flat = [t for a in joint.agents for t in actions[a]]
    for call in (lambda: joint.step(flat), lambda: joint.split(flat), lambda: joint.join(actions)):
        with pytest.raises(ValueError, match=match) as exc:
            call()
        _one_line(exc)


@pytest.mark.parametrize("bad", [True, np.bool_(False), "1", None, 1j, 0.5])
def test_check_refuses_non_integers_in_arrays_too(bad):
    space = _table_env().spaces["hpo"]
    tokens = np.array([bad] + [0] * (len(space.nvec) - 1), dtype=object)
    with pytest.raises(ValueError, match=r"agent 'hpo': token 0 \(lr\) = .* is not a token; tokens are integers"):
        space.check(tokens, "hpo")
    with pytest.raises(ValueError, match="is not a token"):
        space.check(np.ones(len(space.nvec), dtype=bool), "hpo")


@pytest.mark.parametrize("kind", ["float", "numpy-float32", "numpy-int8", "numpy-uint64", "tensor", "tuple"])
def test_integral_floats_and_numpy_integers_are_tokens(kind):
    env = _table_env()
    env.reset(seed=0)
    ints = {a: env.action_space(a).sample() for a in env.agents}
    convert = {
        "float": lambda t: [float(v) for v in t],
        "numpy-float32": lambda t: t.astype(np.float32),
        "numpy-int8": lambda t: [np.int8(v) for v in t],
        "numpy-uint64": lambda t: t.astype(np.uint64),
        "tensor": torch.as_tensor,
        "tuple": lambda t: tuple(int(v) for v in t),
    }[kind]
    given = {a: convert(t) for a, t in ints.items()}
    for a, space in env.spaces.items():
        checked = space.check(given[a], a)
        assert checked.dtype == np.int64 and np.array_equal(checked, ints[a])
    seed = env.next_seeds(1)[0]
    env.train_seed = seed
    assert env.evaluate(given).to_dict() == env.evaluate(ints).to_dict()
    _, rewards, _, _, _ = env.step(given)
    assert math.isfinite(rewards["hpo"])
    joint = JointAutoMLEnv(evaluator=env.evaluator)
    flat = np.concatenate([np.asarray(given[a], dtype=np.float64) for a in joint.agents])
    assert all(np.array_equal(joint.split(flat)[a], ints[a]) for a in joint.agents)


def test_training_env_decodes_integral_floats_like_integers():
    env = _train_env()
    ints = {a: env.action_space(a).sample() for a in env.possible_agents}
    floats = {a: [float(v) for v in t] for a, t in ints.items()}
    assert env.evaluator.pipeline_json(floats) == env.evaluator.pipeline_json(ints)


# -- 2. device ------------------------------------------------------------------------------------
VALID_HERE = "valid values are None, 'auto'"


@pytest.mark.parametrize("build", [
    lambda d: automl_v0.parallel_env(task="digits", device=d),
    lambda d: pettingzoo.make("parallel", "ma2ml/AutoML-Digits-v0", device=d),
    lambda d: JointAutoMLEnv(task="digits", device=d),
    lambda d: TrainEvaluator(get_task("digits"), get_task("digits").make_spaces(), device=d),
    lambda d: _table_env(device=d),
], ids=["parallel_env", "make", "joint", "TrainEvaluator", "table"])
def test_bad_device_is_one_error_at_construction(build):
    with pytest.raises(ValueError, match=rf"unknown device 'tpu'; {VALID_HERE}") as exc:
        build("tpu")
    _one_line(exc)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=rf"device 'cuda:{gpus}' .*; {VALID_HERE}"):
        build(f"cuda:{gpus}")
    if not gpus:
        with pytest.raises(ValueError, match=rf"device 'cuda' needs a GPU, but no GPU is visible; {VALID_HERE}"):
            build("cuda")


def test_resolve_device_accepts_the_documented_values():
    auto = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto") == auto
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("cuda:notanumber", "mps", "", 0):
        with pytest.raises(ValueError, match=rf"unknown device {re.escape(repr(bad))}; {VALID_HERE}"):
            resolve_device(bad)
    assert TrainEvaluator(get_task("digits"), get_task("digits").make_spaces(), device="cpu").device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_devices_accepted_when_a_gpu_is_visible():
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert _train_env(device="cuda:0").evaluator.device == torch.device("cuda:0")
    n = torch.cuda.device_count()
    with pytest.raises(ValueError, match=rf"device 'cuda:{n}' is not a visible GPU; .* with N < {n}"):
        resolve_device(f"cuda:{n}")


# -- 3. data_dir and CIFAR batch files --------------------------------------------------------------
def _write_batch(path: Path, n: int, classes: int, label_key: bytes, rng: np.random.Generator,
                 override: dict[bytes, object] | None = None) -> None:
    """One batch file in torchvision's format; ``override`` replaces entries (None: drops the key)."""
    entry = {label_key: [int(i % classes) for i in range(n)],
             b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    entry.update(override or {})
    with open(path, "wb") as fh:
        pickle.dump({k: v for k, v in entry.items() if v is not None}, fh)


def _fake_cifar10(root: Path, override_first: dict[bytes, object] | None = None) -> Path:
    """A tiny CIFAR-10 folder in torchvision's layout; ``override_first`` changes data_batch_1."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _write_batch(folder / f"data_batch_{i}", 20, 10, b"labels", rng, override_first if i == 1 else None)
    _write_batch(folder / "test_batch", 10, 10, b"labels", rng)
    return folder


@pytest.mark.parametrize("env_id", ["ma2ml/AutoML-CIFAR10-v0", "ma2ml/AutoML-CIFAR100-v0"])
def test_missing_data_dir_is_reported_at_construction(tmp_path, env_id):
    missing = tmp_path / "nope"
    match = rf"data_dir {re.escape(str(missing))} does not exist; put torchvision's cifar-.* there \(`ma2ml download"
    with pytest.raises(DatasetNotFoundError, match=match) as exc:
        pettingzoo.make("parallel", env_id, data_dir=str(missing))
    _one_line(exc)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DatasetNotFoundError, match=r"is a file, not a folder"):
        pettingzoo.make("parallel", env_id, data_dir=str(a_file))
    joint_id = env_id.replace("AutoML", "JointAutoML")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        gymnasium.make(joint_id, data_dir=str(missing))


def test_missing_imagefolder_data_dir_is_reported_at_construction(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"imagefolder: data_dir .*nope does not exist; put an ImageFolder"):
        pettingzoo.make("parallel", "ma2ml/AutoML-ImageNet-v0", data_dir=str(tmp_path / "nope"))


def test_complete_fake_cifar_still_builds_and_observes(tmp_path):
    _fake_cifar10(tmp_path)
    env = pettingzoo.make("parallel", "ma2ml/AutoML-CIFAR10-v0", data_dir=str(tmp_path))
    obs, _ = env.reset(seed=0)
    assert env.observation_space("nas").contains(obs["nas"]) and env.state_space.contains(env.state())


@pytest.mark.parametrize("override, match", [
    ({b"data": np.zeros(1000, dtype=np.uint8)}, "its data hold 1000 values, not a whole number of 3x32x32 images"),
    ({b"labels": [0] * 7}, r"it has 20 images but labels of shape \(7,\); expected 20 labels"),
    ({b"labels": None}, r"it lacks the keys \[b'labels'\]"),
    ({b"data": None}, r"it lacks the keys \[b'data'\]"),
    ({b"labels": [10] * 20}, r"its labels are not all class indices 0\.\.9"),
    ({b"data": np.full((20, 3072), 0.5)}, r"its data are not pixel values"),
])
def test_bad_cifar_batch_is_one_error_naming_the_file(tmp_path, override, match):
    _fake_cifar10(tmp_path, override)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    full = (rf"{re.escape(str(bad))} is not a CIFAR batch in torchvision's format: {match}.*"
            r"`ma2ml download cifar10 --data-dir")
    with pytest.raises(DatasetNotFoundError, match=full) as exc:
        load_cifar("cifar10", tmp_path)
    _one_line(exc)
    env = pettingzoo.make("parallel", "ma2ml/AutoML-CIFAR10-v0", data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=full):
        env.reset(seed=0)


def test_a_batch_that_is_not_a_dict_is_named(tmp_path):
    folder = _fake_cifar10(tmp_path)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    with pytest.raises(DatasetNotFoundError, match=r"test_batch is not a CIFAR batch .*: it holds a list, not a dict"):
        load_cifar("cifar10", tmp_path)


# -- 4. download_cifar ----------------------------------------------------------------------------
def _offline(monkeypatch, error: Exception) -> list[str]:
    """torchvision's download, replaced by one that starts like the real one (makes the folder, a part of
    the archive and of the extracted folder), then fails with ``error``."""
    import torchvision.datasets.cifar as tv_cifar

    calls: list[str] = []

    def fail(url, download_root, filename=None, md5=None, **kw):
        calls.append(url)
        os.makedirs(download_root, exist_ok=True)
        Path(download_root, filename).write_bytes(b"partial")
        Path(download_root, "cifar-10-batches-py").mkdir(exist_ok=True)
        raise error

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", fail)
    return calls


NAME_RESOLUTION = urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))


@pytest.mark.parametrize("error, match", [
    (NAME_RESOLUTION, r"cannot reach www\.cs\.toronto\.edu \(.*Temporary failure in name resolution\)"),
    (ConnectionResetError(104, "Connection reset by peer"),
     r"cannot reach www\.cs\.toronto\.edu \(ConnectionResetError: .*\)"),
    (RuntimeError("File not found or corrupted."),
     r"fetching https://\S+ failed \(RuntimeError: File not found or corrupted\.\)"),
])
def test_failed_download_removes_what_it_created(tmp_path, monkeypatch, error, match):
    calls = _offline(monkeypatch, error)
    target = tmp_path / "new" / "deeper"
    full = rf"could not download cifar10 into {re.escape(str(target))}: {match}; nothing was left behind"
    with pytest.raises(ValueError, match=full) as exc:
        download_cifar("cifar10", target)
    _one_line(exc)
    assert calls and not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="nothing was left behind"):
        download_cifar("cifar10", kept)
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]


def test_download_into_a_file_is_one_error_and_touches_nothing(tmp_path, monkeypatch):
    calls = _offline(monkeypatch, NAME_RESOLUTION)
    a_file = tmp_path / "data"
    a_file.write_text("mine")
    for target in (a_file, a_file / "sub"):
        with pytest.raises(ValueError, match=rf"data_dir {re.escape(str(target))}(: \S+)? is a file, not a folder; "
                                             r"download_cifar needs a folder"):
            download_cifar("cifar10", target)
    assert calls == [] and a_file.read_text() == "mine"
    with pytest.raises(ValueError, match=r"unknown CIFAR dataset 'svhn'; valid names are \['cifar10', 'cifar100'\]"):
        download_cifar("svhn", tmp_path)


# -- 5. state_space -------------------------------------------------------------------------------
@pytest.mark.parametrize("module, kwargs", [
    (automl_v0, {"evaluator": SyntheticEvaluator(game=0)}),
    (digitsbench_v0, {}),
], ids=["synthetic", "table"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pettingzoo_state_test(module, kwargs):
    state_test(module.env(**kwargs), module.parallel_env(**kwargs), num_cycles=5)


def test_state_space_is_the_descriptor_box():
    env = _train_env()
    env.reset(seed=0)
    space = env.state_space
    assert space.shape == env.state().shape == (6,) and space.dtype == np.float32
    assert np.array_equal(space.low, env.observation_space("aug").low)
    assert np.array_equal(space.high, env.observation_space("aug").high)
    assert space.contains(env.state())


# -- 6. arguments the observation shows --------------------------------------------------------------
@pytest.mark.parametrize("flops_constraint, reward_exponent", [
    (1.0, -10.0), (1e100, 0.0), (1e100, -10.0), (1.0, 0.0), (np.float32(5e5), np.float64(-0.07)), (10**30, -3),
])
def test_extreme_legal_arguments_stay_in_the_observation_space(flops_constraint, reward_exponent):
    env = automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), flops_constraint=flops_constraint,
                                 reward_exponent=reward_exponent)
    obs, _ = env.reset(seed=0)
    for agent in env.agents:
        assert env.observation_space(agent).contains(obs[agent]), obs[agent]
    assert env.state_space.contains(env.state())
    joint = JointAutoMLEnv(evaluator=SyntheticEvaluator(game=0), flops_constraint=flops_constraint,
                           reward_exponent=reward_exponent)
    assert joint.observation_space.contains(joint.reset(seed=0)[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"reward_exponent": -20}, r"reward_exponent must be a finite number in \[-10, 0\], got -20"),
    ({"reward_exponent": 0.1}, r"reward_exponent must be a finite number in \[-10, 0\]"),
    ({"reward_exponent": math.nan}, r"reward_exponent must be a finite number in \[-10, 0\], got nan"),
    ({"reward_exponent": -math.inf}, r"reward_exponent must be a finite number"),
    ({"reward_exponent": "-0.07"}, r"reward_exponent must be a finite number"),
    ({"flops_constraint": 1e120}, r"flops_constraint must be a finite number in \[1, 1e\+100\] multiply-adds"),
    ({"flops_constraint": 10**400}, r"flops_constraint must be a finite number in \[1, 1e\+100\] multiply-adds"),
    ({"flops_constraint": math.inf}, r"flops_constraint must be a finite number .*, got inf"),
    ({"flops_constraint": math.nan}, r"flops_constraint must be a finite number .*, got nan"),
    ({"flops_constraint": 0.5}, r"flops_constraint must be a finite number in \[1, "),
    ({"flops_constraint": 0}, r"flops_constraint must be a finite number in \[1, "),
    ({"flops_constraint": -1e6}, r"flops_constraint must be a finite number in \[1, "),
])
@pytest.mark.parametrize("make", [
    lambda **kw: automl_v0.parallel_env(evaluator=SyntheticEvaluator(game=0), **kw),
    lambda **kw: _train_env(**kw),
    lambda **kw: _table_env(**kw),
    lambda **kw: JointAutoMLEnv(evaluator=SyntheticEvaluator(game=0), **kw),
], ids=["synthetic", "train", "table", "joint"])
def test_out_of_range_reward_arguments_are_one_error(make, kwargs, match):
    with pytest.raises(ValueError, match=match) as exc:
        make(**kwargs)
    _one_line(exc)


@pytest.mark.parametrize("limit", [float("nan"), float("inf"), 0, -1, "60", True])
def test_time_limit_must_be_finite_positive_seconds(limit):
    with pytest.raises(ValueError, match=r"time_limit = .* is invalid; valid values are None or finite numbers in \(0, "):
        automl_v0.parallel_env(time_limit=limit)
