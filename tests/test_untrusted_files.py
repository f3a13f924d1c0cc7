"""Files a user names are untrusted: every one is refused with one line that names it, and nothing in
it runs or fills the memory.

CIFAR batches (pickles) with planted payloads, the restricted unpickler on genuine batches, the
"regular file of at most N bytes" check (``/dev/zero``, a FIFO, a folder, a huge file) at every
place that reads a user-named file, an ``.npz`` table whose headers claim huge arrays, table values
out of range, hand-edited evaluation-store rows and store paths SQLite cannot open.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.files import MAX_INPUT_BYTES, check_input_file, read_input_file
from ma2ml.envs.tasks.data import DatasetNotFoundError, load_cifar


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and isinstance(exc.value, UserError), message
    return message


# -- CIFAR batches: a restricted unpickler ---------------------------------------------------------
class _System:
    """A payload: unpickling it calls ``os.system`` (touches the marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Eval:
    """A payload through ``builtins.eval`` (writes the marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


class _Open:
    """A payload through a builtin that is not a function call in disguise: ``builtins.open``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _batch(n: int, seed: int = 0) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"training batch 1 of 5", b"labels": [int(i % 10) for i in range(n)],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def _cifar10(root: Path, first: object = None, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    """A tiny CIFAR-10 folder; ``first`` (pickled as is) replaces data_batch_1's content."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        entry = first if (name == "data_batch_1" and first is not None) else _batch(20, i)
        (folder / name).write_bytes(pickle.dumps(entry, protocol=protocol))
    return folder


@pytest.mark.parametrize("payload, name", [(_System, "posix.system"), (_Eval, "builtins.eval"),
                                           (_Open, "io.open")])
@pytest.mark.parametrize("where", ["whole file", "inside the dict", "as the data array"])
def test_planted_cifar_batch_runs_nothing(tmp_path, payload, name, where):
    marker = tmp_path / "PAYLOAD_RAN"
    planted = payload(marker)
    content = {"whole file": planted, "inside the dict": {**_batch(20), b"filenames": [planted]},
               "as the data array": {**_batch(20), b"data": planted}}[where]
    folder = _cifar10(tmp_path / "data", content)
    if name == "posix.system" and os.name != "posix":
        name = "nt.system"
    with pytest.raises(DatasetNotFoundError) as exc:
        load_cifar("cifar10", tmp_path / "data")
    message = _one_line(exc)
    assert message.startswith(f"{folder / 'data_batch_1'} is not a CIFAR batch: it asks to load {name}"), message
    assert "nothing was run" in message and "`ma2ml download cifar10" in message
    assert not marker.exists(), "the planted payload ran"


def test_planted_batch_through_the_env_runs_nothing(tmp_path):
    import pettingzoo

    import ma2ml.envs  # noqa: F401  (registers the envs)

    marker = tmp_path / "PAYLOAD_RAN"
    _cifar10(tmp_path, _System(marker))
    env = pettingzoo.make("parallel", "ma2ml/AutoML-CIFAR10-v0", data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="it asks to load posix.system"):
        env.reset(seed=0)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_genuine_batches_still_load_with_every_pickle_protocol(tmp_path, protocol):
    folder = _cifar10(tmp_path, {**_batch(20, 9), b"labels": [np.int64(i % 10) for i in range(20)]}, protocol)
    splits = load_cifar("cifar10", tmp_path)
    assert (len(splits.train), len(splits.test)) == (90, 20)
    first = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"]
    every = np.concatenate([splits.train.x.numpy(), splits.val.x.numpy()]).reshape(-1, 3072)
    assert {row.tobytes() for row in first} <= {row.tobytes() for row in every}


def _array_state(shape, dtype, data) -> bytes:
    """A pickle that rebuilds an array the way numpy writes one, with a forged state."""

    class Forged:
        def __reduce__(self):
            from numpy._core.multiarray import _reconstruct

            return _reconstruct, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, data)

    return pickle.dumps({b"labels": [0], b"data": Forged()}, protocol=2)


@pytest.mark.parametrize("shape, dtype, data, match", [
    ((10**12,), np.dtype("u1"), b"\0" * 16, r"an array claims shape \(1000000000000,\) of uint8 but holds other data"),
    ((10**6,), np.dtype("O"), [0], r"it holds an array of dtype dtype\('O'\), not of plain numbers"),
    ((1,), np.dtype([("a", "u1")]), b"\0", r"it holds an array of dtype .*, not of plain numbers"),
])
def test_forged_array_states_are_refused_before_allocating(tmp_path, shape, dtype, data, match):
    folder = _cifar10(tmp_path)
    (folder / "data_batch_1").write_bytes(_array_state(shape, dtype, data))
    with pytest.raises(DatasetNotFoundError, match=rf"data_batch_1 is not a CIFAR batch in torchvision's format "
                                                   rf"\(UnpicklingError: {match}") as exc:
        load_cifar("cifar10", tmp_path)
    _one_line(exc)


def test_reconstruct_of_a_huge_shape_or_another_class_is_refused(tmp_path):
    from numpy._core.multiarray import _reconstruct

    class Huge:
        def __reduce__(self):
            return _reconstruct, (np.ndarray, (10**12,), b"b")

    class OtherClass:  # an admitted global (numpy.dtype) in the place of the array class
        def __reduce__(self):
            return _reconstruct, (np.dtype, (0,), b"b")

    for planted in (Huge(), OtherClass()):
        folder = tmp_path / type(planted).__name__
        _cifar10(folder, {**_batch(20), b"data": planted})
        with pytest.raises(DatasetNotFoundError, match=r"UnpicklingError: an array is rebuilt as .* not numpy's"):
            load_cifar("cifar10", folder)


@pytest.mark.parametrize("kind", ["folder", "fifo", "huge"])
def test_cifar_batch_that_is_not_a_regular_small_file_is_refused_unread(tmp_path, kind, monkeypatch):
    folder = _cifar10(tmp_path)
    bad = folder / "test_batch"
    bad.unlink()
    if kind == "folder":
        bad.mkdir()
        match = f"CIFAR batch {re.escape(str(bad))} is a folder, not a regular file"
    elif kind == "fifo":
        os.mkfifo(bad)  # opening it would block forever
        match = f"CIFAR batch {re.escape(str(bad))} is a FIFO \\(named pipe\\), not a regular file"
    else:
        with open(bad, "wb") as fh:
            fh.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk used
        match = f"CIFAR batch {re.escape(str(bad))} is 268,435,457 bytes, more than the 268,435,456 bytes"
    with pytest.raises(UserError, match=match) as exc:
        load_cifar("cifar10", tmp_path)
    _one_line(exc)
