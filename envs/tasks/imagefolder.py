"""The ``imagefolder`` task: ImageNet, or a subset such as ImageNet-200, searched in the FBNet space.

The poster's ImageNet setting: AUG (AutoAugment), NAS (:class:`~ma2ml.envs.spaces.fbnet.FBNetSpace`,
an FBNetV3-style space with the input resolution) and HPO, under a C = 600M multiply-adds
constraint. Registered as task ``imagefolder`` (all classes, default budget) and as the envs
``ma2ml/AutoML-ImageNet-v0`` / ``ma2ml/JointAutoML-ImageNet-v0``, which take automl_v0's arguments
plus the :class:`ImageFolderConfig` fields in :data:`ENV_OPTIONS`::

    pettingzoo.make("parallel", "ma2ml/AutoML-ImageNet-v0", data_dir="/data/imagenet",
                    classes=200, max_per_class=300)          # an ImageNet-200 proxy, C = 600M
    parallel_env(task=imagefolder_task(ImageFolderConfig(classes=200)), data_dir=...)  # the same, by hand

Proxy budget (:class:`ImageFolderConfig` defaults, meant for one GPU): 5 epochs of SGD (Nesterov,
cosine) on the training split, images cached at 320 px and resized per batch to the architecture's
resolution (192-320 px), full width, AutoAugment policy plus a padded random crop (1/16 of the
side) and flips; HPO picks lr, weight decay, batch size (128-512), label smoothing and drop path.

Folder layout (``data_dir``), torchvision's ``ImageFolder`` format::

    train/<class>/<image>    any depth below the class folder; JPEG, PNG, ... (torchvision's list)
    val/<class>/<image>      ImageNet's 50,000 validation images sorted into the same class folders

Splits (the convention of NAS papers on ImageNet):

- ``train``: ``train/`` minus a held-out part, ``val_fraction`` of every class (stratified, seeded
  by ``split_seed``);
- ``val``: that held-out part of ``train/``; the reward uses it and only it;
- ``test``: ``val/``, the official validation set: reported in the records, never in the reward.

``classes=N`` keeps the first N class folders in sorted order (ImageNet's wnid order), or pass the
class names; ``max_per_class`` keeps the first images of every class of ``train/`` (sorted paths),
to bound the cache and the proxy training.

Images are decoded once and cached: each image is opened with PIL (JPEGs decoded at a reduced
scale when they are much larger, ``Image.draft``), converted to RGB, resized so its shorter side is
``image_size`` and centre-cropped to a square (bilinear, antialiased), and stored as uint8
``x.npy`` (N, 3, S, S) with ``y.npy`` and ``meta.json`` in ``cache_dir/<split>-<S>px-<key>/``; the
key hashes the folder, the selected files with their labels and S, so another subset or size gets
its own cache and an unchanged one is reused (written to a temporary folder, then renamed: an
interrupted decode leaves nothing half-written). ``image_size`` defaults to the largest searched
resolution; the trainer resizes batches to the resolution each architecture chooses. Memory: the
training split is held (on the GPU when training there) as uint8, N x 3 x S x S bytes, e.g. 307 KB
per image at S = 320 (ImageNet-200 at 300 images per class: 18 GB).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ma2ml.envs.core.errors import UserError
from ma2ml.models.fbnet import REFERENCE_ARCHITECTURES, RESOLUTIONS, FBNetArch, FBNetBudget, build_fbnet
from ma2ml.envs.spaces import AugSpace, HParams, HpoSpace
from ma2ml.envs.spaces.fbnet import FBNetSpace
from ma2ml.envs.tasks import Task, register_task
from ma2ml.envs.tasks.data import DatasetNotFoundError, Split, Splits, stratified_split

IMAGENET_HPO_LEVELS: dict[str, tuple] = {
    "lr": (0.05, 0.1, 0.2, 0.4, 0.8),
    "weight_decay": (1e-5, 4e-5, 1e-4, 3e-4),
    "momentum": (0.9,),
    "batch_size": (128, 256, 512),
    "label_smoothing": (0.0, 0.1, 0.2),
    "drop_path": (0.0, 0.1, 0.2),
}
"""HPO levels of the ImageNet task (SGD with Nesterov momentum 0.9 and a cosine schedule)."""


IMAGENET_HPARAMS = HParams(lr=0.2, weight_decay=4e-5, momentum=0.9, batch_size=256, label_smoothing=0.1,
                           drop_path=0.0)
"""Hyper-parameters used when HPO is not an agent."""


@dataclass(frozen=True)
class ImageFolderConfig:
    """What :func:`imagefolder_task` builds: data selection, cache and proxy budget."""

    classes: int | tuple[str, ...] | None = None
    """First N classes (sorted folder names), the names of the classes to keep, or None for all."""
    max_per_class: int | None = None
    """Keep at most this many images of every class of ``train/`` (first in sorted path order)."""
    resolutions: tuple[int, ...] = RESOLUTIONS
    """Input resolutions the NAS agent chooses among."""
    image_size: int | None = None
    """Side of the cached square images; None: the largest of ``resolutions``."""
    val_fraction: float = 0.1
    """Part of every class of ``train/`` held out as the validation split (at least one image)."""
    split_seed: int = 0
    """Seed of the stratified validation hold-out."""
    epochs: int = 5
    """Proxy-training epochs of one evaluation (the env's ``epochs`` overrides it)."""
    width_mult: float = 1.0
    """Width multiplier of the trained network (below 1: cheaper proxy, lower FLOPs)."""
    eval_batch_size: int = 256
    """Batch size when scoring the validation and test splits."""
    flops_constraint: float = 600e6
    """The reward's constraint C in multiply-adds (the poster's 600M)."""
    cache_dir: str | None = None
    """Folder of the decoded caches; None: ``$XDG_CACHE_HOME/ma2ml/imagefolder`` (``~/.cache/...``)."""
    workers: int | None = None
    """Decoding threads; None: one per CPU core."""

    def __post_init__(self) -> None:
        if isinstance(self.classes, int) and self.classes < 1:
            raise UserError(f"classes must be >= 1, got {self.classes}")
        for name in ("classes", "resolutions"):  # lists (from a command line) become hashable tuples
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.max_per_class is not None and self.max_per_class < 2:
            raise UserError(f"max_per_class must be >= 2 (one image is held out for validation), "
                             f"got {self.max_per_class}")
        if not self.resolutions or min(self.resolutions) < 8:
            raise UserError(f"resolutions must be sides of at least 8 px, got {self.resolutions}")
        if self.image_size is not None and self.image_size < 8:
            raise UserError(f"image_size must be >= 8 px, got {self.image_size}")
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.epochs < 1:
            raise UserError(f"epochs must be >= 1, got {self.epochs}")

    @property
    def cache_size(self) -> int:
        """Side of the cached images."""
        return self.image_size or max(self.resolutions)

    @property
    def task_name(self) -> str:
        """``imagefolder``, followed by the settings that change results when they differ from the defaults."""
        neutral = {"cache_dir", "workers"}
        changed = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                   if f.name not in neutral and getattr(self, f.name) != f.default]
        return "imagefolder" + (f"({','.join(changed)})" if changed else "")

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser()
        return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "ma2ml" / "imagefolder"


LAYOUT_HINT = ("put an ImageFolder tree there: train/<class>/<images> and val/<class>/<images> "
               "(for ImageNet, the 50,000 validation images sorted into the class folders of train/)")


def _select_classes(train_dir: Path, classes: int | tuple[str, ...] | None) -> list[str]:
    from torchvision.datasets.folder import find_classes

    try:
        available, _ = find_classes(str(train_dir))
    except FileNotFoundError:
        raise DatasetNotFoundError(f"imagefolder: {train_dir} has no class folders; {LAYOUT_HINT}") from None
    if classes is None:
        return list(available)
    if isinstance(classes, int):
        if classes > len(available):
            raise UserError(f"imagefolder: classes={classes}, but {train_dir} has {len(available)} class folders")
        return list(available[:classes])
    unknown = sorted(set(classes) - set(available))
    if unknown:
        raise UserError(f"imagefolder: classes {unknown[:5]} are not folders of {train_dir}; "
                         f"valid names are {available[:5]}{' ...' if len(available) > 5 else ''}")
    return sorted(classes)


def _list_images(folder: Path, classes: list[str], max_per_class: int | None) -> list[tuple[str, int]]:
    """(path, label) of every image of the selected classes, sorted by class then path."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    try:
        samples = make_dataset(str(folder), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(f"imagefolder: {exc}; {LAYOUT_HINT}") from None
    if max_per_class is None:
        return samples
    kept: dict[int, int] = {}
    out = []
    for path, label in samples:
        if kept.get(label, 0) < max_per_class:
            kept[label] = kept.get(label, 0) + 1
            out.append((path, label))
    return out


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """An image file as uint8 (3, size, size): shorter side resized to ``size``, centre crop."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))
            square = ImageOps.fit(img.convert("RGB"), (size, size), method=Image.Resampling.BILINEAR)
    except (OSError, ValueError) as exc:
        raise UserError(f"imagefolder: cannot decode {path} ({exc})") from None
    return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)


def cached_images(folder: Path, samples: list[tuple[str, int]], size: int, cache_dir: Path,
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, size, size), labels int64) of ``samples``, decoded once and cached.

    The cache folder is named by the split, the size and a hash of the folder, the files and
    their labels; it is built in a temporary folder and renamed into place when complete.
    """
    root = folder.resolve()
    digest = hashlib.sha1(json.dumps(
        [str(root), size, [(os.path.relpath(p, root), y) for p, y in samples]]).encode()).hexdigest()[:16]
    target = cache_dir / f"{folder.name}-{size}px-{digest}"
    if not (target / "meta.json").is_file():
        _build_cache(root, samples, size, target, workers)
    return _load_cache(target, size)


def _load_cache(target: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The cached (images, labels) of ``target``, memory-mapped: an .npy whose header claims more than
    the file holds, an object array (no pickle is ever loaded) or arrays of the wrong shape or dtype
    are one ``UserError`` naming the cache (delete it to rebuild it)."""
    try:
        x = np.load(target / "x.npy", mmap_mode="r", allow_pickle=False)
        y = np.array(np.load(target / "y.npy", mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise UserError(f"imagefolder: cache {target} is unreadable ({type(exc).__name__}: {exc}); "
                        "delete it and it is built again") from None
    if x.dtype != np.uint8 or x.shape[1:] != (3, size, size) or y.dtype.kind not in "iu" or y.shape != x.shape[:1]:
        raise UserError(f"imagefolder: cache {target} holds images {x.dtype} {x.shape} and labels {y.dtype} "
                        f"{y.shape}, expected uint8 (N, 3, {size}, {size}) and N integer labels; delete it and it "
                        "is built again")
    return x, y


def _build_cache(root: Path, samples: list[tuple[str, int]], size: int, target: Path, workers: int | None) -> None:
    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        x = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.uint8, shape=(len(samples), 3, size, size))

        def fill(i: int) -> None:
            x[i] = decode_image(samples[i][0], size)

        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            list(tqdm(pool.map(fill, range(len(samples))), total=len(samples), disable=None,
                      desc=f"decoding {root} at {size}px", unit="img"))
        x.flush()
        del x
        np.save(tmp / "y.npy", np.array([y for _, y in samples], dtype=np.int64))
        (tmp / "meta.json").write_text(json.dumps({"root": str(root), "size": size, "count": len(samples)}))
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same cache first
            if not (target / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
    """The rows ``idx`` of a (memory-mapped) cache, copied into memory."""
    return Split(torch.from_numpy(x[idx]), torch.from_numpy(y[idx]))


def load_imagefolder(data_dir: str | Path | None, config: ImageFolderConfig | None = None) -> Splits:
    """The splits of an ImageFolder tree (see the module docstring); decodes and caches on first use."""
    config = config or ImageFolderConfig()
    if data_dir is None:
        raise DatasetNotFoundError(f"imagefolder needs --data-dir DIR (data_dir=...); {LAYOUT_HINT}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        state = "is a file, not a folder" if root.exists() else "does not exist"
        raise DatasetNotFoundError(f"imagefolder: data_dir {root} {state}; {LAYOUT_HINT}")
    missing = [d for d in ("train", "val") if not (root / d).is_dir()]
    if missing:
        raise DatasetNotFoundError(f"imagefolder: {root} lacks {'/ and '.join(missing)}/; {LAYOUT_HINT}")
    classes = _select_classes(root / "train", config.classes)
    train_samples = _list_images(root / "train", classes, config.max_per_class)
    test_samples = _list_images(root / "val", classes, None)
    counts = np.bincount([y for _, y in train_samples], minlength=len(classes))
    if counts.min() < 2:
        raise DatasetNotFoundError(
            f"imagefolder: class {classes[int(counts.argmin())]!r} of {root / 'train'} has {counts.min()} image(s); "
            f"every class needs at least 2 (one is held out for validation)")
    size, cache = config.cache_size, config.resolved_cache_dir()
    x, y = cached_images(root / "train", train_samples, size, cache, config.workers)
    xt, yt = cached_images(root / "val", test_samples, size, cache, config.workers)
    fraction = max(config.val_fraction, len(classes) / len(y))
    train, val = stratified_split(y, fraction, config.split_seed)
    return Splits(_split(x, y, train), _split(x, y, val), _split(xt, yt, np.arange(len(yt))), len(classes))


def imagefolder_task(config: ImageFolderConfig | None = None) -> Task:
    """The ImageNet-setting task for ``config`` (default: :class:`ImageFolderConfig()`), registered by its
    name; equal configs give the same object, so its splits are loaded once per process."""
    return _task_for(config or ImageFolderConfig())


@lru_cache(maxsize=None)
def _task_for(config: ImageFolderConfig) -> Task:
    size = config.cache_size
    default_arch = REFERENCE_ARCHITECTURES["fbnetv3-c-like"]
    task = Task(
        name=config.task_name,
        description=(f"ImageNet or a subset (ImageFolder tree in --data-dir), FBNetV3-style NAS, "
                     f"C = {config.flops_constraint / 1e6:g}M"),
        load=lambda data_dir: load_imagefolder(data_dir, config),
        spaces={
            "aug": lambda: AugSpace(num_sub_policies=5),
            "nas": lambda: FBNetSpace(resolutions=config.resolutions),
            "hpo": lambda: HpoSpace(IMAGENET_HPO_LEVELS, base=IMAGENET_HPARAMS),
        },
        default_architecture=FBNetArch(default_arch.stages, size),
        budget=FBNetBudget(epochs=config.epochs, crop_padding=max(size // 16, 1), flip=True,
                           eval_batch_size=config.eval_batch_size, width_mult=config.width_mult),
        default_hparams=IMAGENET_HPARAMS,
        flops_constraint=config.flops_constraint,
        needs_data_dir=True,
        build_network=build_fbnet,
    )
    return register_task(task, overwrite=True)


def write_synthetic_imagefolder(root: str | Path, classes: int = 3, train_per_class: int = 6, val_per_class: int = 2,
                                size: tuple[int, int] = (48, 36), seed: int = 0) -> Path:
    """Write a small ImageFolder tree of real image files (alternating JPEG and PNG), for smoke tests.

    Each class is a noisy image of its own colour, so a network can learn it. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    palette = rng.integers(0, 256, size=(classes, 3))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"class{c:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = rng.normal(0.0, 40.0, size=(size[1], size[0], 3))
                pixels = np.clip(palette[c] + noise, 0, 255).astype(np.uint8)
                ext = "JPEG" if i % 2 == 0 else "png"
                Image.fromarray(pixels).save(folder / f"img{i:04d}.{ext}")
    return root

