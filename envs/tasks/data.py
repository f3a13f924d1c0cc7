"""Datasets as uint8 image tensors with fixed train / validation / test splits.

Every loader returns :class:`Splits`: images ``(N, C, H, W)`` uint8 and labels int64, held
in memory (they are small, or cached at the training resolution), so the trainer can move
them to the device once and augment whole batches there.

- ``digits``: scikit-learn's 8x8 digits (ships with the package), a fixed stratified split.
- ``cifar10`` / ``cifar100``: torchvision's on-disk format (``cifar-10-batches-py/`` or
  ``cifar-100-python/`` under ``data_dir``); the validation split is a fixed stratified
  part of the official training set, the test split is the official test set. Every batch
  file is checked when read (its keys, a whole number of 3x32x32 images of pixel values
  0..255, one label in ``0..classes-1`` per image). A batch file is read with
  :class:`CifarUnpickler`, which builds only what a CIFAR batch holds (dicts, lists, bytes,
  numbers, plain numpy arrays): a planted pickle that asks for anything else is refused and
  nothing in it runs. :func:`download_cifar` fetches them with torchvision, only when asked
  (``ma2ml download``).

A missing or bad dataset is one :class:`DatasetNotFoundError` (a ``ValueError``) naming the
folder or file, the problem and what to put there. A failed download is one ``ValueError`` and
leaves nothing behind.
"""
from __future__ import annotations

import io
import math
import pickle
import shutil
import urllib.error
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.files import read_input_file


class DatasetNotFoundError(UserError):
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


CIFAR_PIXELS = 3 * 32 * 32
"""Values (bytes) of one CIFAR image: 3 channels of 32 x 32, row-major per channel."""


def _read_cifar(files: list[Path], label_key: bytes, classes: int, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) and labels of torchvision's CIFAR batch files; one error naming a bad file."""
    xs, ys = [], []
    for f in files:
        data = read_input_file(f, "CIFAR batch")
        try:
            entry = CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
        except ForbiddenGlobal as exc:
            raise DatasetNotFoundError(f"{f} is not a CIFAR batch: it asks to load {exc}, which a CIFAR batch "
                                       f"never holds (nothing was run); {fix}") from None
        except Exception as exc:  # any unreadable or foreign file is the same user error
            raise DatasetNotFoundError(f"{f} is not a CIFAR batch in torchvision's format "
                                       f"({type(exc).__name__}: {exc}); {fix}") from None
        problem = _batch_problem(entry, label_key, classes)
        if problem is not None:
            raise DatasetNotFoundError(f"{f} is not a CIFAR batch in torchvision's format: {problem}; {fix}")
        xs.append(np.asarray(entry[b"data"]).astype(np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(entry[label_key]).astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that :class:`CifarUnpickler` does not admit (its message: ``module.name``)."""


def _plain(dtype: Any) -> np.dtype:
    """A fresh numpy dtype of a plain number kind (bool, integer, float) equal to ``dtype``; a dtype
    of Python objects, records or sub-arrays, or one whose pickled state set odd flags, is refused
    (rebuilding it from its type string drops whatever its state held)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or dtype.fields or dtype.subdtype:
        raise pickle.UnpicklingError(f"it holds an array of dtype {dtype!r}, not of plain numbers")
    return np.dtype(dtype.str)


class _PickledArray(np.ndarray):
    """The stub numpy's ``_reconstruct`` makes for a pickled array, whose ``__setstate__`` admits only
    plain numbers whose bytes match the shape: checked before numpy allocates anything."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("an array's pickled state is not numpy's")
        shape, dtype, fortran, data = state[-4:]
        dtype = _plain(dtype)
        if (not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape)
                or not isinstance(data, (bytes, bytearray)) or len(data) != math.prod(shape) * dtype.itemsize):
            raise pickle.UnpicklingError(f"an array claims shape {shape!r} of {dtype} but holds other data")
        super().__setstate__((shape, dtype, bool(fortran), data))


def _empty_array(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` as a pickled array calls it: an empty stub, filled by its checked
    ``__setstate__``; another class or shape (which would allocate or run code) is refused."""
    if cls is not np.ndarray or shape != (0,):
        raise pickle.UnpicklingError(f"an array is rebuilt as {cls!r} of shape {shape!r}, not numpy's (0,) stub")
    return _PickledArray((0,), dtype=np.uint8)


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """``numpy.dtype`` of a type string (``'u1'``, ``'<i8'``) only; :func:`_plain` checks it where used."""
    if not isinstance(spec, str) or len(spec) > 8:
        raise pickle.UnpicklingError(f"it names a dtype {spec!r} that is not a plain type string")
    return np.dtype(spec)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's pickle-protocol-5 array rebuild, for plain numbers (``frombuffer`` checks the size)."""
    return np.frombuffer(buffer, dtype=_plain(dtype)).reshape(shape, order="F" if order == "F" else "C")


def _scalar(dtype: Any, data: Any) -> Any:
    """numpy's scalar rebuild (``numpy.int64(3)`` in a label list), for a plain number and its bytes."""
    dtype = _plain(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"it holds a numpy {dtype} scalar whose bytes are not one {dtype}")
    return np.frombuffer(data, dtype=dtype)[0]


def _latin1(text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 writes ``bytes`` into a protocol-2 pickle (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"it encodes text with {encoding!r}, not latin-1")
    return text.encode("latin1")


_CIFAR_GLOBALS: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _empty_array for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_frombuffer"): _frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
    **{(module, "scalar"): _scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1,
}
"""Every global a CIFAR batch's pickle names, and what it loads as. torchvision's files (Python 2
pickles) hold a dict of bytes keys, lists of ints and bytes and one uint8 array; a file re-pickled by
Python 3 may also spell bytes through ``_codecs.encode`` and arrays through ``_frombuffer``."""


class CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a CIFAR batch holds (dicts, lists, str, bytes, numbers and
    plain numpy arrays); any other global (``os.system``, ``builtins.eval``, a class to instantiate)
    is refused with :class:`ForbiddenGlobal` before it is looked up, so a planted file runs nothing."""

    def find_class(self, module: str, name: str) -> Any:
        found = _CIFAR_GLOBALS.get((module, name))
        if found is None:
            raise ForbiddenGlobal(f"{module}.{name}")
        return found


def _batch_problem(entry: Any, label_key: bytes, classes: int) -> str | None:
    """What makes an unpickled CIFAR batch unusable, or None: keys, pixel count and values, labels."""
    if not isinstance(entry, dict):
        return f"it holds a {type(entry).__name__}, not a dict"
    missing = [k for k in (b"data", label_key) if k not in entry]
    if missing:
        return f"it lacks the keys {missing} (its keys are {list(entry)[:6]})"
    try:
        data, labels = np.asarray(entry[b"data"]), np.asarray(entry[label_key])
    except ValueError as exc:  # ragged lists
        return f"its data or labels are not arrays ({exc})"
    if data.size % CIFAR_PIXELS:
        return f"its data hold {data.size} values, not a whole number of 3x32x32 images ({CIFAR_PIXELS} each)"
    n = data.size // CIFAR_PIXELS
    if labels.shape != (n,):
        return f"it has {n} images but labels of shape {labels.shape}; expected {n} labels"
    if n and (data.dtype.kind not in "iu" or data.min() < 0 or data.max() > 255):
        return f"its data are not pixel values (integers in 0..255; got {data.dtype})"
    if n and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= classes):
        return f"its labels are not all class indices 0..{classes - 1}"
    return None


def load_cifar(name: str, data_dir: str | Path | None, val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """CIFAR-10/100 from ``data_dir`` in torchvision's on-disk format (no download).

    A missing ``data_dir`` or batch file, or a batch file that is not a CIFAR batch (see the
    module docstring), is a :class:`DatasetNotFoundError` naming it.
    """
    if name not in CIFAR_LAYOUT:
        raise UserError(f"unknown CIFAR dataset {name!r}; valid names are {list(CIFAR_LAYOUT)}")
    folder, train_files, test_files, label_key, classes = CIFAR_LAYOUT[name]
    if data_dir is None:
        raise DatasetNotFoundError(
            f"{name} needs --data-dir DIR (data_dir=...) holding {folder}/ in torchvision's format; "
            f"fetch it once with `ma2ml download {name} --data-dir DIR`"
        )
    fix = f"put torchvision's {folder}/ there (`ma2ml download {name} --data-dir {data_dir}` fetches it)"
    given = Path(data_dir).expanduser()
    if not given.is_dir():
        state = "is a file, not a folder" if given.exists() else "does not exist"
        raise DatasetNotFoundError(f"{name} not found: data_dir {given} {state}; {fix}")
    root = given / folder
    missing = [n for n in train_files + test_files if not (root / n).exists()]  # a folder or FIFO: named below
    if missing:
        raise DatasetNotFoundError(f"{name} not found: {root} lacks {missing}; {fix}")
    fix = f"fetch {folder}/ again (`ma2ml download {name} --data-dir {data_dir}`)"
    x, y = _read_cifar([root / n for n in train_files], label_key, classes, fix)
    xt, yt = _read_cifar([root / n for n in test_files], label_key, classes, fix)
    train, val = stratified_split(y, val_fraction, seed)
    test = np.arange(len(yt))
    return Splits(_split(x, y, train), _split(x, y, val), _split(xt, yt, test), classes)


def download_cifar(name: str, data_dir: str | Path) -> Path:
    """Fetch CIFAR into ``data_dir`` with torchvision (only when the user asks); returns its folder.

    ``data_dir`` (and any missing parent) is created. A file in its place is a ``ValueError``
    before anything is fetched. Any failure while fetching (no network, a corrupt download, a
    full disk) is one ``ValueError``, and what this call created is removed first: the folders
    it made, the archive and the extracted folder. A folder that existed before is never removed.
    """
    if name not in CIFAR_LAYOUT:
        raise UserError(f"unknown CIFAR dataset {name!r}; valid names are {list(CIFAR_LAYOUT)}")
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    root = Path(data_dir).expanduser()
    made = _outermost_missing(root, f"download_cifar needs a folder to put {cls.base_folder}/ in")
    new_entries = [p for p in (root / cls.filename, root / cls.base_folder) if not p.exists()]
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except BaseException as exc:
        for path in [made] if made is not None else new_entries:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if not isinstance(exc, Exception):  # Ctrl-C: cleaned up, still an interrupt
            raise
        raise UserError(f"could not download {name} into {root}: {_download_problem(exc, cls.url)}; "
                         f"nothing was left behind (retry, or put torchvision's {cls.base_folder}/ "
                         f"there by hand)") from None
    return root / CIFAR_LAYOUT[name][0]


def _outermost_missing(path: Path, why: str) -> Path | None:
    """The outermost folder on the way to ``path`` (itself included) that does not exist, or None;
    a file in the way is a ``ValueError`` saying ``why`` a folder is needed."""
    missing = None
    for p in (path, *path.parents):
        if p.is_dir():
            return missing
        if p.exists():
            where = f"data_dir {path}" if p == path else f"data_dir {path}: {p}"
            raise UserError(f"{where} is a file, not a folder; {why} (it is created when missing)")
        missing = p
    return missing


def _download_problem(exc: Exception, url: str) -> str:
    """One line on why fetching ``url`` failed: the host and the network's reason, or the error."""
    host = urllib.parse.urlsplit(url).hostname
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach {host} ({exc.reason})"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return f"cannot reach {host} ({type(exc).__name__}: {exc})"
    return f"fetching {url} failed ({type(exc).__name__}: {exc})"
