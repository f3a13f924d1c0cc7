"""The imagefolder task and the ImageNet envs, on a tiny generated tree of real JPEG/PNG files."""
from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pettingzoo
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test
from PIL import Image

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.envs.core.records import EvalRecord
from ma2ml.models.fbnet import fbnet_macs
from ma2ml.envs.tasks import get_task, imagefolder, task_names
from ma2ml.envs.tasks.data import DatasetNotFoundError
from ma2ml.envs.tasks.imagefolder import (ImageFolderConfig, imagefolder_task, load_imagefolder,
                                          write_synthetic_imagefolder)
from ma2ml.training import evaluators
from ma2ml.training.evaluators import normalizer, to_input

PID, GID = "ma2ml/AutoML-ImageNet-v0", "ma2ml/JointAutoML-ImageNet-v0"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_synthetic_imagefolder(tmp_path_factory.mktemp("imagefolder"), classes=3, train_per_class=6,
                                       val_per_class=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> ImageFolderConfig:
    """The tiny proxy budget: one epoch, 32-40 px, a quarter of the width."""
    return ImageFolderConfig(resolutions=(32, 40), epochs=1, width_mult=0.25,
                             cache_dir=str(tmp_path_factory.mktemp("cache")))


def tiny_env(tree, tiny, **kw):
    """The registered env with the tiny budget, through the env's own keyword arguments."""
    return pettingzoo.make("parallel", PID, data_dir=str(tree), epochs=tiny.epochs, resolutions=tiny.resolutions,
                           width_mult=tiny.width_mult, cache_dir=tiny.cache_dir, **kw)


def test_splits(tree, tiny):
    splits = load_imagefolder(tree, tiny)
    assert splits.num_classes == 3 and splits.image_shape == (3, 40, 40)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 3, 6)
    assert sorted(splits.val.y.tolist()) == [0, 1, 2]  # stratified: one held-out image per class
    assert splits.test.y.tolist() == [0, 0, 1, 1, 2, 2]  # val/ is the test split
    assert splits.train.x.dtype == torch.uint8
    again = load_imagefolder(tree, tiny)
    assert torch.equal(again.val.x, splits.val.x) and torch.equal(again.train.y, splits.train.y)
    other = load_imagefolder(tree, ImageFolderConfig(resolutions=(32, 40), split_seed=1, cache_dir=tiny.cache_dir))
    assert not torch.equal(other.val.x, splits.val.x)


def test_images_decoded_once(tree, tiny, monkeypatch):
    load_imagefolder(tree, tiny)
    caches = sorted(p.name for p in Path(tiny.cache_dir).iterdir())

    def no_decode(path, size):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(imagefolder, "decode_image", no_decode)
    load_imagefolder(tree, tiny)
    assert sorted(p.name for p in Path(tiny.cache_dir).iterdir()) == caches
    monkeypatch.undo()
    load_imagefolder(tree, ImageFolderConfig(classes=2, resolutions=(32, 40), cache_dir=tiny.cache_dir))
    load_imagefolder(tree, ImageFolderConfig(image_size=24, cache_dir=tiny.cache_dir))
    names = sorted(p.name for p in Path(tiny.cache_dir).iterdir())
    assert len(names) == len(caches) + 4  # new train/ and val/ caches per class subset and per size
    assert any(n.startswith("train-24px-") for n in names) and any(n.startswith("val-24px-") for n in names)
    assert not any(n.startswith(".") for n in names)  # no temporary folder left behind


def test_class_subsets_and_caps(tree, tiny):
    two = load_imagefolder(tree, ImageFolderConfig(classes=2, resolutions=(32, 40), cache_dir=tiny.cache_dir))
    assert two.num_classes == 2 and len(two.test) == 4
    named = load_imagefolder(tree, ImageFolderConfig(classes=("class002",), max_per_class=4, resolutions=(32, 40),
                                                     cache_dir=tiny.cache_dir))
    assert named.num_classes == 1 and len(named.train) + len(named.val) == 4
    np.testing.assert_array_equal(named.test.x.numpy(), load_imagefolder(tree, tiny).test.x[4:].numpy())
    with pytest.raises(ValueError, match="classes=4, but .* has 3 class folders"):
        load_imagefolder(tree, ImageFolderConfig(classes=4, cache_dir=tiny.cache_dir))
    with pytest.raises(ValueError, match=r"classes \['nope'\] are not folders"):
        load_imagefolder(tree, ImageFolderConfig(classes=("nope",), cache_dir=tiny.cache_dir))
    with pytest.raises(ValueError, match="max_per_class must be >= 2"):
        ImageFolderConfig(max_per_class=1)


def test_missing_folders_say_what_to_put_there(tmp_path, tree):
    with pytest.raises(DatasetNotFoundError, match=r"needs --data-dir DIR .*train/<class>/<images>"):
        load_imagefolder(None)
    (tmp_path / "train").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"lacks val/; put an ImageFolder tree there"):
        load_imagefolder(tmp_path)
    (tmp_path / "val").mkdir()
    with pytest.raises(DatasetNotFoundError, match="has no class folders"):
        load_imagefolder(tmp_path)
    (tmp_path / "train" / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "a" / "x.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "a" / "y.png")
    with pytest.raises(DatasetNotFoundError, match="Found no valid file for the classes a"):
        load_imagefolder(tmp_path, ImageFolderConfig(cache_dir=str(tmp_path / "c")))
    with pytest.raises(DatasetNotFoundError, match="imagefolder needs --data-dir"):
        pettingzoo.make("parallel", PID)


def test_decode_image_crops_the_centre(tmp_path):
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # white centre third, black sides
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(wide[..., 0]).convert("L").save(tmp_path / "grey.jpg")
    out = imagefolder.decode_image(tmp_path / "wide.png", 10)
    assert out.shape == (3, 10, 10) and out.dtype == np.uint8 and out.min() > 200
    assert imagefolder.decode_image(tmp_path / "grey.jpg", 10).shape == (3, 10, 10)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot decode .*bad.jpg"):
        imagefolder.decode_image(tmp_path / "bad.jpg", 10)


def test_registration():
    assert "imagefolder" in task_names()
    task = get_task("imagefolder")
    assert task is imagefolder_task() and task.flops_constraint == 600e6
    assert imagefolder_task(ImageFolderConfig(classes=200)).name == "imagefolder(classes=200)"
    assert PID in ma2ml.envs.env_ids() and GID in gymnasium.registry


def test_env_options_build_the_task(tree, tiny):
    env = tiny_env(tree, tiny, classes=2)
    assert env.unwrapped.task is imagefolder_task(ImageFolderConfig(classes=2, resolutions=(32, 40), width_mult=0.25,
                                                                     cache_dir=tiny.cache_dir))
    assert env.unwrapped.evaluator.budget.epochs == 1 and env.unwrapped.spaces["nas"].nvec[-1] == 2
    with pytest.raises(ValueError, match=r"pass task= or the imagefolder options \['classes'\], not both"):
        pettingzoo.make("parallel", PID, task="imagefolder", classes=2, data_dir=str(tree))


def test_constraint_defaults_to_600m_and_is_configurable(tree):
    assert pettingzoo.make("parallel", PID, data_dir=str(tree)).reward_fn.constraint == 600e6
    assert pettingzoo.make("parallel", PID, data_dir=str(tree), flops_constraint=300e6).reward_fn.constraint == 300e6


def test_reward_on_either_side_of_the_constraint(tree):
    env = pettingzoo.make("parallel", PID, data_dir=str(tree))
    assert env.reward(EvalRecord(status="ok", val_acc=0.8, flops=900_000_000)) == pytest.approx(0.7776131547, rel=1e-9)
    assert env.reward(EvalRecord(status="ok", val_acc=0.8, flops=400_000_000)) == 0.8
    double = EvalRecord(status="ok", val_acc=0.75, flops=1_200_000_000)
    assert env.reward(double) == pytest.approx(0.7144784985, rel=1e-9)
    assert env.reward(EvalRecord(status="diverged", val_acc=0.8, flops=400_000_000)) == 0.0
    soft = pettingzoo.make("parallel", PID, data_dir=str(tree), soft_constraint=True)
    assert soft.reward(EvalRecord(status="ok", val_acc=0.8, flops=400_000_000)) == pytest.approx(0.8230313442, rel=1e-9)


def test_to_input_resizes_only_when_asked():
    x = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    norm = normalizer(x)
    assert torch.equal(to_input(x, norm), (x.float() / 255.0 - norm[0]) / norm[1])
    assert torch.equal(to_input(x, norm, 40), to_input(x, norm))
    small = to_input(x, norm, 20)
    assert small.shape == (4, 3, 20, 20)
    flat = torch.tensor([10, 128, 250], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 40, 40)
    torch.testing.assert_close(to_input(flat, norm, 24), to_input(flat, norm)[..., :24, :24])


def test_normalizer_bounds_its_copy(monkeypatch):
    x = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    full = normalizer(x)
    monkeypatch.setattr(evaluators, "NORM_MAX_VALUES", 48 * 4)  # room for 4 images: every third is used
    sub = normalizer(x)
    expected = x[::3].float() / 255.0
    torch.testing.assert_close(sub[0].flatten(), expected.mean(dim=(0, 2, 3)))
    assert not torch.equal(sub[0], full[0])


@pytest.mark.slow
def test_conformance_with_real_training(tree, tiny):
    parallel_api_test(tiny_env(tree, tiny), num_cycles=2)
    parallel_seed_test(lambda: tiny_env(tree, tiny), num_cycles=2)
    joint = gymnasium.make(GID, task=imagefolder_task(tiny), data_dir=str(tree))
    assert joint.unwrapped.parallel.task.budget.epochs == 1
    obs, _ = joint.reset(seed=0)
    assert joint.observation_space.contains(obs)
    _, reward, terminated, _, info = joint.step(joint.action_space.sample())
    assert terminated and info["status"] == "ok" and reward == info["reward"]


@pytest.mark.slow
def test_records_count_the_chosen_resolution(tree, tiny):
    env = tiny_env(tree, tiny)
    env.reset(seed=0)
    space = env.unwrapped.spaces["nas"]
    for side in (32, 40):
        actions = {a: env.action_space(a).sample() for a in env.possible_agents}
        arch = space.decode(actions["nas"])
        actions["nas"] = space.encode(type(arch)(arch.stages, side))
        record = env.unwrapped.evaluate(actions)
        assert record.status == "ok", record.error
        assert record.flops == fbnet_macs(type(arch)(arch.stages, side), 3, width_mult=0.25)
        assert record.pipeline["nas"]["resolution"] == side
    # the reward follows the formula on a real record, on both sides of the constraint
    above = tiny_env(tree, tiny, flops_constraint=record.flops / 2)
    below = tiny_env(tree, tiny, flops_constraint=record.flops * 2)
    assert above.unwrapped.reward(record) == pytest.approx(record.val_acc * 2.0 ** -0.07)
    assert below.unwrapped.reward(record) == record.val_acc
