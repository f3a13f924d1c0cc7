"""Datasets as uint8 image tensors with fixed train / validation / test splits.

Every loader returns :class:`Splits`: images ``(N, C, H, W)`` uint8 and labels int64, held
in memory (they are small, or cached at the training resolution), so the trainer can move
them to the device once and augment whole batches there.

- ``digits``: scikit-learn's 8x8 digits (ships with the package), a fixed stratified split.
- ``cifar10`` / ``cifar100``: torchvision's on-disk format (``cifar-10-batches-py/`` or
  ``cifar-100-python/`` under ``data_dir``); the validation split is a fixed stratified
  part of the official training set, the test split is the official test set.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


class DatasetNotFoundError(ValueError):
    """A dataset folder is missing or incomplete; the message says what to put where."""


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    """Images, uint8 (N, C, H, W)."""
    y: torch.Tensor
    """Labels, int64 (N,)."""

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) with ``fraction`` of each class held out, seeded."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    kept, held = train_test_split(idx, test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(kept), np.sort(held)


def _split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(y[idx].astype(np.int64)))


def load_digits(seed: int = 0) -> Splits:
    """scikit-learn's digits: 1,797 8x8 grey images, 60/20/20 stratified split (seeded)."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    x = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = data.target.astype(np.int64)
    rest, test = stratified_split(y, 0.2, seed)
    train_r, val_r = stratified_split(y[rest], 0.25, seed)
    return Splits(_split(x, y, rest[train_r]), _split(x, y, rest[val_r]), _split(x, y, test), 10)


CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


def _read_cifar(files: list[Path], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for f in files:
        with open(f, "rb") as fh:
            try:
                entry = pickle.load(fh, encoding="bytes")
                data, labels = entry[b"data"], entry[label_key]
            except Exception as exc:  # any unreadable or foreign file is the same user error
                raise DatasetNotFoundError(f"{f} is not a CIFAR batch in torchvision's format ({exc})") from None
        xs.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(labels, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def load_cifar(name: str, data_dir: str | Path | None, val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """CIFAR-10/100 from ``data_dir`` in torchvision's on-disk format (no download)."""
    if name not in CIFAR_LAYOUT:
        raise ValueError(f"unknown CIFAR dataset {name!r}; valid names are {list(CIFAR_LAYOUT)}")
    folder, train_files, test_files, label_key, classes = CIFAR_LAYOUT[name]
    if data_dir is None:
        raise DatasetNotFoundError(
            f"{name} needs --data-dir DIR (data_dir=...) holding {folder}/ in torchvision's format; "
            f"fetch it once with `ma2ml download {name} --data-dir DIR`"
        )
    root = Path(data_dir).expanduser() / folder
    missing = [n for n in train_files + test_files if not (root / n).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{name} not found: {root} lacks {missing}; put torchvision's {folder}/ there "
            f"(`ma2ml download {name} --data-dir {data_dir}` fetches it)"
        )
    x, y = _read_cifar([root / n for n in train_files], label_key)
    xt, yt = _read_cifar([root / n for n in test_files], label_key)
    train, val = stratified_split(y, val_fraction, seed)
    test = np.arange(len(yt))
    return Splits(_split(x, y, train), _split(x, y, val), _split(xt, yt, test), classes)


def download_cifar(name: str, data_dir: str | Path) -> Path:
    """Fetch CIFAR into ``data_dir`` with torchvision (only when the user asks)."""
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    cls(str(data_dir), train=True, download=True)
    cls(str(data_dir), train=False, download=True)
    return Path(data_dir) / CIFAR_LAYOUT[name][0]
