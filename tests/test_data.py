"""Dataset loaders: digits' fixed split and CIFAR from tiny files in torchvision's on-disk format."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from ma2ml.envs.tasks.data import DatasetNotFoundError, load_cifar, load_digits


def test_digits_split_is_fixed_stratified_and_disjoint():
    a, b = load_digits(), load_digits()
    assert (len(a.train), len(a.val), len(a.test)) == (1077, 360, 360)
    assert a.train.x.dtype.is_floating_point is False and a.image_shape == (1, 8, 8)
    assert np.array_equal(a.val.x.numpy(), b.val.x.numpy())
    for split in (a.train, a.val, a.test):
        counts = np.bincount(split.y.numpy(), minlength=10)
        assert counts.min() > 0.08 * len(split) and counts.max() < 0.12 * len(split)
    rows = {tuple(x.flatten().tolist()) + (int(y),) for s in (a.val, a.test) for x, y in zip(s.x, s.y)}
    train_rows = {tuple(x.flatten().tolist()) + (int(y),) for x, y in zip(a.train.x, a.train.y)}
    assert len(rows & train_rows) < 10  # digits has a few duplicate images, nothing more


def _write_batch(path, n, classes, label_key, rng):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(i % classes) for i in range(n)]
    with open(path, "wb") as fh:
        pickle.dump({label_key: labels, b"data": data, b"filenames": [b"x.png"] * n}, fh)
    return data, labels


def test_cifar10_loader_on_real_format(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    first, labels = _write_batch(root / "data_batch_1", 40, 10, b"labels", rng)
    for i in range(2, 6):
        _write_batch(root / f"data_batch_{i}", 40, 10, b"labels", rng)
    test, _ = _write_batch(root / "test_batch", 20, 10, b"labels", rng)
    splits = load_cifar("cifar10", tmp_path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (180, 20, 20)
    assert splits.image_shape == (3, 32, 32) and splits.num_classes == 10
    # the official test set is the test split, in order, decoded as (C, H, W)
    assert np.array_equal(splits.test.x[0].numpy().reshape(-1), test[0])
    assert sorted(np.bincount(splits.val.y.numpy()).tolist()) == [2] * 10


def test_cifar100_loader(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    _write_batch(root / "train", 1000, 100, b"fine_labels", rng)
    _write_batch(root / "test", 200, 100, b"fine_labels", rng)
    splits = load_cifar("cifar100", tmp_path)
    assert splits.num_classes == 100 and len(splits.val) == 100


def test_missing_or_bad_cifar_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar10 not found: .* lacks .*data_batch_1.*ma2ml download cifar10"):
        load_cifar("cifar10", tmp_path)
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    (root / "train").write_bytes(b"not a pickle")
    (root / "test").write_bytes(b"not a pickle")
    with pytest.raises(DatasetNotFoundError, match="not a CIFAR batch"):
        load_cifar("cifar100", tmp_path)
