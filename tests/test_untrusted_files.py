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
        match = f"CIFAR batch {re.escape(str(bad))}: is a folder, not a regular file"
    elif kind == "fifo":
        os.mkfifo(bad)  # opening it would block forever
        match = f"CIFAR batch {re.escape(str(bad))}: is a FIFO \\(named pipe\\), not a regular file"
    else:
        with open(bad, "wb") as fh:
            fh.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk used
        match = f"CIFAR batch {re.escape(str(bad))}: is 268,435,457 bytes, more than the 268,435,456 bytes"
    with pytest.raises(UserError, match=match) as exc:
        load_cifar("cifar10", tmp_path)
    _one_line(exc)


# -- the "regular file of at most N bytes" check ---------------------------------------------------
def _huge(path: Path) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk used
    return path


def _special(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """A path of ``kind`` and the problem the check must name."""
    if kind == "dev zero":
        return Path("/dev/zero"), "is a character device, not a regular file"
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe.npz")
        return tmp_path / "pipe.npz", r"is a FIFO \(named pipe\), not a regular file"
    if kind == "folder":
        (tmp_path / "dir.npz").mkdir()
        return tmp_path / "dir.npz", "is a folder"
    return _huge(tmp_path / "huge.npz"), "is 268,435,457 bytes, more than the 268,435,456 bytes ma2ml reads"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["dev zero", "fifo", "folder", "huge"])
def test_input_file_check_refuses_without_reading(tmp_path, kind):
    path, problem = _special(kind, tmp_path)
    for check in (check_input_file, read_input_file):
        with pytest.raises(UserError, match=f"^pipeline file {re.escape(str(path))}: {problem}") as exc:
            check(path, "pipeline file")
        _one_line(exc)
    good = tmp_path / "good.json"
    good.write_text("{}")
    assert check_input_file(good, "pipeline file") == good and read_input_file(good, "pipeline file") == b"{}"
    with pytest.raises(UserError, match="x: does not exist"):
        check_input_file(tmp_path / "x", "pipeline file")
    with pytest.raises(UserError, match="cannot be read"):
        check_input_file(tmp_path / ("n" * 300), "pipeline file")  # a name longer than the system allows


# -- benchmark tables -------------------------------------------------------------------------------
def _table_arrays() -> dict[str, np.ndarray]:
    from ma2ml.bench.table import TABLE_PATH

    with np.load(TABLE_PATH) as data:
        return {k: data[k] for k in data.files}


def _refused_everywhere(path: Path, match: str, capsys) -> str:
    """``load_table``, the table env and ``ma2ml bench info --table`` refuse ``path`` with one line
    ``benchmark table {path}: ...`` matching ``match``; returns the message."""
    import pettingzoo

    import ma2ml.envs  # noqa: F401  (registers the envs)
    from ma2ml.cli import main
    from ma2ml.bench.table import load_table

    with pytest.raises(UserError, match=f"^benchmark table {re.escape(str(path))}: {match}") as exc:
        load_table(path)
    message = _one_line(exc)
    with pytest.raises(UserError, match="^benchmark table "):
        pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table=str(path))
    assert main(["bench", "info", "--table", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"ma2ml bench: error: {message}\n"
    return message


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["dev zero", "fifo", "huge"])
def test_table_that_is_no_regular_file_or_too_big_is_refused_unread(tmp_path, kind, capsys):
    path, problem = _special(kind, tmp_path)
    _refused_everywhere(path, problem, capsys)


def _forged_member(path: Path, name: str, shape: tuple, descr: str = "<f8", data: bytes = b"\0" * 8) -> None:
    """The packaged table with member ``name`` replaced by an .npy header claiming ``shape`` of ``descr``."""
    import io
    import zipfile

    arrays = _table_arrays()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array)
            body = b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + data if key == name else buffer.getvalue()
            zf.writestr(f"{key}.npy", body)


@pytest.mark.parametrize("name, shape, descr", [
    ("val_acc", (10**12,), "<f8"),           # 8 TB of floats
    ("curve", (5184, 3, 10**9), "<f8"),
    ("meta", (), "<U100000000"),             # a 400 MB string
    ("flops", (5184,), "<i8"),               # the right shape, but short of bytes
])
def test_npz_member_claiming_more_than_it_holds_is_refused_before_allocating(tmp_path, name, shape, descr, capsys):
    path = tmp_path / f"forged-{name}.npz"
    _forged_member(path, name, shape, descr)
    message = _refused_everywhere(path, f"array {name!r} claims shape ", capsys)
    assert "but holds 8 bytes; the file is forged or damaged" in message


def test_npz_unpacking_to_more_than_the_cap_is_refused(tmp_path, monkeypatch, capsys):
    from ma2ml.bench import table

    monkeypatch.setattr(table, "MAX_INPUT_BYTES", 100_000)  # the packaged table unpacks to 1,041,312 bytes
    path = tmp_path / "big.npz"
    path.write_bytes(table.TABLE_PATH.read_bytes())
    _refused_everywhere(path, "its arrays unpack to 1,041,312 bytes, more than the 100,000 ma2ml reads", capsys)


def _changed(path: Path, **changes) -> Path:
    np.savez(path, **{**_table_arrays(), **changes})
    return path


def _at(name: str, index: tuple, value, **more) -> dict[str, np.ndarray]:
    arrays = _table_arrays()
    array = arrays[name].copy()
    array[index] = value
    return {name: array, **more}


@pytest.mark.parametrize("changes, match", [
    (_at("val_acc", (7, 0), 7.5), r"array 'val_acc' holds 7\.5 at pipeline 7, replicate 0 \(status 'ok'\); "
                                  r"valid: finite values in 0\.\.1"),
    (_at("val_acc", (7, 0), np.nan), r"array 'val_acc' holds nan at pipeline 7, replicate 0 \(status 'ok'\)"),
    (_at("test_acc", (9, 0), -0.25), r"array 'test_acc' holds -0\.25 at pipeline 9, replicate 0"),
    (_at("curve", (3, 0, 2), np.inf), r"array 'curve' holds inf at pipeline 3, replicate 0, epoch 3 \(status 'ok'\); "
                                      r"valid: values in 0\.\.1 \(NaN for epochs not trained\)"),
    (_at("train_seconds", (5, 0), -1.0), r"array 'train_seconds' holds -1\.0 at pipeline 5, replicate 0 .*"
                                         r"valid: finite seconds >= 0"),
    (_at("train_seconds", (5, 0), np.inf), r"array 'train_seconds' holds inf at pipeline 5"),
    (_at("seed", (11, 0), -7), r"array 'seed' holds -7 at pipeline 11, replicate 0 .* valid: training seeds"),
    (_at("seed", (11, 0), 2**62), r"array 'seed' holds 4611686018427387904 at pipeline 11"),
    (_at("flops", (13,), -5), r"array 'flops' holds -5 at pipeline 13; valid: integers > 0"),
    (_at("params", (2,), 0), r"array 'params' holds 0 at pipeline 2; valid: integers > 0 \(0 only for a "
                             r"pipeline with no ok training\)"),
])
def test_table_values_out_of_range_are_one_error_naming_array_and_row(tmp_path, changes, match, capsys):
    assert (_table_arrays()["status"][:16, 0] == 0).all()  # the rows changed above trained ok
    _refused_everywhere(_changed(tmp_path / "bad.npz", **changes), match, capsys)


def test_failed_trainings_may_store_nan_accuracies_and_zero_flops(tmp_path):
    from ma2ml.bench.table import TableEvaluator, load_table

    arrays = _table_arrays()
    status, val, test, flops = (arrays[k].copy() for k in ("status", "val_acc", "test_acc", "flops"))
    single = int(np.flatnonzero((status >= 0).sum(axis=1) == 1)[0])  # a pipeline with one training
    status[single, 0] = 4  # failed
    val[single, 0] = test[single, 0] = np.nan
    flops[single] = 0
    path = _changed(tmp_path / "failed.npz", status=status, val_acc=val, test_acc=test, flops=flops)
    assert load_table(path).status[single, 0] == 4
    record = TableEvaluator(table=path, replicate=0)._record_at(single, 0)
    assert record.status == "failed" and record.val_acc == 0.0


# -- raw build files --------------------------------------------------------------------------------
def _raw(path: Path, **changes) -> Path:
    """A raw build file of two packaged entries; ``changes`` edit the second result (None drops a field)."""
    import json

    from ma2ml.bench import space_fingerprint
    from ma2ml.bench.space import BENCH_BUDGET, bench_spaces
    from ma2ml.bench.table import load_table

    table = load_table()
    lines = [json.dumps({"fingerprint": space_fingerprint(bench_spaces(), BENCH_BUDGET)})]
    for i, k in ((0, 0), (60, 0)):
        result = {"index": i, "replicate": k, "seed": int(table.seed[i, k]), "status": "ok",
                  "val_acc": float(table.val_acc[i, k]), "test_acc": float(table.test_acc[i, k]),
                  "flops": int(table.flops[i]), "params": int(table.params[i]), "curve": table.curve[i, k].tolist(),
                  "train_seconds": float(table.train_seconds[i, k]), "error": None}
        if i == 60:
            result = {key: v for key, v in {**result, **changes}.items() if v is not None}
        lines.append(json.dumps(result))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("changes, match", [
    ({}, None),
    ({"index": None}, r"line 3 is not a build result \(KeyError: 'index'\)"),
    ({"index": 10**9}, r"line 3 is not a build result \(ValueError: 'index' is 1000000000, expected an integer in "
                       r"0\.\.5183\)"),
    ({"replicate": -1}, r"line 3 is not a build result \(ValueError: 'replicate' is -1, expected an integer in 0\.\.2"),
    ({"index": True}, r"line 3 is not a build result \(ValueError: 'index' is True"),
    ({"status": "great"}, r"line 3 is not a build result \(ValueError: 'status' is 'great', expected one of \['ok', "),
    ({"val_acc": "high"}, r"line 3 is not a build result \(ValueError: could not convert string to float"),
    ({"curve": [0.5] * 99}, r"line 3 is not a build result \(ValueError: 'curve' must be a list of at most 4 accuracies"),
    ({"seed": 2**70}, r"line 3 is not a build result \(OverflowError"),
    ({"val_acc": 7.5}, r"holds results a table cannot: array 'val_acc' holds 7\.5 at pipeline 60, replicate 0"),
    ({"flops": -3}, r"holds results a table cannot: array 'flops' holds -3 at pipeline 60"),
])
def test_hand_edited_raw_build_results_are_one_error_naming_the_line(tmp_path, changes, match):
    from ma2ml.bench.digits_build import compact

    raw = _raw(tmp_path / "raw.jsonl", **changes)
    out = tmp_path / "t.npz"
    if match is None:
        assert compact(raw, out) == out and out.exists()
        return
    with pytest.raises(UserError, match=f"^{re.escape(str(raw))} " + match) as exc:
        compact(raw, out)
    _one_line(exc)
    assert not out.exists()


def test_a_raw_line_that_is_json_but_no_object_is_named(tmp_path):
    from ma2ml.bench.digits_build import compact, read_raw

    raw = _raw(tmp_path / "raw.jsonl")
    raw.write_text(raw.read_text() + "[1, 2]\n" + "[" * 100_000 + "\n")
    with pytest.raises(UserError, match=r"raw\.jsonl line 4 is not a JSON result \(a JSON list, expected an object\)"):
        list(read_raw(raw))
    with pytest.raises(UserError, match=r"line 4 is not a JSON result"):
        compact(raw, tmp_path / "t.npz")
    raw.write_text(_raw(tmp_path / "raw.jsonl").read_text() + "[" * 100_000 + "\n")
    with pytest.raises(UserError, match=r"line 4 is not a JSON result \(maximum recursion depth"):
        list(read_raw(raw))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["dev zero", "fifo", "huge"])
def test_raw_build_file_or_table_out_that_is_no_regular_file_is_refused(tmp_path, kind, capsys, monkeypatch):
    from ma2ml.cli import main

    path, problem = _special(kind, tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert main(["bench", "compact", "--raw", str(path), "--out", "t.npz"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(f"ma2ml bench: error: raw build file {re.escape(str(path))}: {problem}[^\n]*\n", err), err
    good = _raw(tmp_path / "good.jsonl")
    before = sorted(tmp_path.rglob("*"))
    assert main(["bench", "compact", "--raw", str(good), "--out", str(path), "--force"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(f"ma2ml bench: error: table {re.escape(str(path))}: {problem}[^\n]*\n", err), err
    assert sorted(tmp_path.rglob("*")) == before
    assert kind != "dev zero" or Path("/dev/zero").is_char_device()


# -- the evaluation store -------------------------------------------------------------------------
def _store_with_rows(path: Path) -> list[int]:
    """A store holding one run of 4 synthetic evaluations; returns the row ids."""
    from ma2ml.bench.synthetic import SyntheticEvaluator
    from ma2ml.runtime.runlog import RunLog
    from ma2ml.runtime.store import EvalStore

    ev = SyntheticEvaluator()
    rng = np.random.default_rng(0)
    batch = [{a: s.sample(rng) for a, s in ev.spaces.items()} for _ in range(4)]
    with EvalStore(path) as store:
        RunLog(store, ev, run_id="r").evaluate_batch(batch, [1, 2, 3, 4])
        return [e.id for e in store.evaluations("r")]


def _edit(path: Path, sql: str, *args) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("sql, field", [
    ("UPDATE evaluations SET record = json_remove(record, '$.status') WHERE id = ?", "field 'record' lacks 'status'"),
    ("UPDATE evaluations SET record = json_set(record, '$.val_acc', 'high') WHERE id = ?",
     "field 'record.val_acc' is 'high', expected a finite number"),
    ("UPDATE evaluations SET record = json_set(record, '$.flops', -1) WHERE id = ?",
     "field 'record.flops' is -1, expected an integer >= 0"),
    ("UPDATE evaluations SET record = json_set(record, '$.curve', json('[0.5, \"x\"]')) WHERE id = ?",
     "field 'record.curve' is [0.5, 'x'], expected a list of finite numbers"),
    ("UPDATE evaluations SET record = json_set(record, '$.pipeline', 3) WHERE id = ?",
     "field 'record.pipeline' is 3, expected an object"),
    ("UPDATE evaluations SET record = 'not json' WHERE id = ?", "field 'record' is not JSON"),
    ("UPDATE evaluations SET record = '[1, 2]' WHERE id = ?", "field 'record' is a JSON list, expected an object"),
    ("UPDATE evaluations SET record = 7 WHERE id = ?", "field 'record' is a JSON int, expected an object"),
    ("UPDATE evaluations SET record = x'00ff' WHERE id = ?", "field 'record' is b'\\x00\\xff', expected text"),
    ("UPDATE evaluations SET pipeline_key = 'not json' WHERE id = ?",
     "field 'pipeline_key' is not JSON (Expecting value: line 1 column 1"),
    ("UPDATE evaluations SET pipeline_key = '[1]' WHERE id = ?",
     "field 'pipeline_key' is '[1]', expected JSON agent -> list of integer tokens"),
    ("UPDATE evaluations SET seed = 'x' WHERE id = ?", "field 'seed' is 'x', expected an integer"),
    ("UPDATE evaluations SET val_acc = 'high', seed = 2.5 WHERE id = ?", "field 'seed' is 2.5, expected an integer"),
])
def test_hand_edited_store_row_is_one_error_naming_store_row_and_field(tmp_path, sql, field):
    from ma2ml.bench.synthetic import SyntheticEvaluator
    from ma2ml.runtime.runlog import RunLog
    from ma2ml.runtime.store import EvalStore, StoreError

    path = tmp_path / "evals.sqlite"
    rows = _store_with_rows(path)
    _edit(path, sql, rows[2])
    with EvalStore(path) as store:
        with pytest.raises(StoreError) as exc:
            store.evaluations("r")
        message = _one_line(exc)
        assert message.startswith(f"evaluation store {path}: row id {rows[2]} (run 'r', evaluation 2): {field}")
        assert message.endswith("delete that row (the evaluation is run again) or restore the store from a copy")
        with pytest.raises(StoreError, match=re.escape(field)):
            store.get("r", 2)
        assert store.get("r", 1) is not None  # the other rows still read
    with EvalStore(path) as store:  # resuming the run meets the row: the same error, nothing written
        ev = SyntheticEvaluator()
        rng = np.random.default_rng(0)
        batch = [{a: s.sample(rng) for a, s in ev.spaces.items()} for _ in range(4)]
        with pytest.raises(StoreError, match=re.escape(field)):
            RunLog(store, ev, run_id="r").evaluate_batch(batch, [1, 2, 3, 4])
        assert store.count() == 4


def test_hand_edited_run_config_and_settings_are_named(tmp_path):
    from ma2ml.runtime.store import EvalStore, StoreError

    path = tmp_path / "evals.sqlite"
    _store_with_rows(path)
    _edit(path, "UPDATE runs SET config = '{oops'")
    _edit(path, "UPDATE settings SET json = '[['")
    with EvalStore(path) as store:
        with pytest.raises(StoreError, match=r"run 'r': field 'config' is '\{oops', not a JSON object") as exc:
            store.run("r")
        _one_line(exc)
        settings_hash = store._conn.execute("SELECT hash FROM settings").fetchone()[0]
        with pytest.raises(StoreError, match=f"settings '{settings_hash}': field 'json' is not JSON") as exc:
            store.settings(settings_hash)
        _one_line(exc)


def test_store_path_sqlite_cannot_open_is_refused_before_creating_anything(tmp_path):
    from ma2ml.runtime.store import EvalStore, StoreError

    deep = tmp_path.joinpath(*["d" * 60] * 9)  # each name is legal, the whole is over 512 bytes
    path = deep / "evals.sqlite"
    assert len(str(path)) > 600
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(StoreError) as exc:
        EvalStore(path)
    message = _one_line(exc)
    assert message.startswith(f"evaluation store {path}: its full path is ")
    assert "more than the 500 SQLite can open; choose a shorter path" in message
    assert sorted(tmp_path.rglob("*")) == before, "the refusal created folders"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["dev zero", "fifo"])
def test_store_that_is_a_device_or_fifo_is_refused_without_opening(tmp_path, kind):
    from ma2ml.runtime.store import EvalStore, StoreError

    path, problem = _special(kind, tmp_path)
    with pytest.raises(StoreError, match=f"^evaluation store {re.escape(str(path))}: {problem}") as exc:
        EvalStore(path)
    _one_line(exc)


def test_store_under_a_file_is_one_error(tmp_path):
    from ma2ml.runtime.store import EvalStore, StoreError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match=r"afile/evals\.sqlite: cannot be created \(") as exc:
        EvalStore(tmp_path / "afile" / "evals.sqlite")
    _one_line(exc)


# -- pipeline files and final checkpoints (ma2ml/training/final.py) -------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["dev zero", "fifo", "huge"])
def test_pipeline_file_that_is_no_regular_file_is_refused_unread(tmp_path, kind):
    from ma2ml.training.final import read_pipeline

    path, problem = _special(kind, tmp_path)
    with pytest.raises(UserError, match=f"^pipeline file {re.escape(str(path))}: {problem}") as exc:
        read_pipeline(path)
    _one_line(exc)


def test_deeply_nested_pipeline_json_is_one_line(tmp_path):
    from ma2ml.training.final import read_pipeline

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match=r"deep\.json nests JSON too deeply to be a pipeline file") as exc:
        read_pipeline(path)
    _one_line(exc)
    with pytest.raises(UserError, match=r"nothing\.json: does not exist"):
        read_pipeline(tmp_path / "nothing.json")


def _checkpoint(path: Path, **record_changes) -> Path:
    import torch

    from ma2ml.training.final import CHECKPOINT_FORMAT

    record = {"env_id": "ma2ml/AutoML-Digits-v0", "task": "digits", "env_args": {}, "data_dir": None,
              "actions": {"aug": [0, 0], "nas": [0] * 3, "hpo": [0] * 6}, "pipeline": {}, "epochs": 1, "seed": 0,
              "device": "cpu", "test_acc": 0.5, "flops": 1, "params": 1, "train_size": 10, "budget": {},
              "image_shape": [1, 8, 8], "num_classes": 10}
    record = {k: v for k, v in {**record, **record_changes}.items() if v is not ...}
    torch.save({"format": CHECKPOINT_FORMAT, "record": record, "state_dict": {}}, path)
    return path


@pytest.mark.parametrize("changes, match", [
    ({"env_id": ...}, r"its record lacks \['env_id'\]"),
    ({"colour": "red"}, r"its record has unknown fields \['colour'\]"),
    ({"epochs": "1"}, r"its record's 'epochs' is '1', expected int"),
    ({"env_args": [1]}, r"its record's 'env_args' is \[1\], expected dict"),
    ({"actions": {"aug": ["x"]}}, r"its record's 'actions' are not agent -> integer tokens"),
])
def test_hand_edited_checkpoint_record_is_one_error(tmp_path, changes, match):
    from ma2ml.training.final import load_checkpoint

    path = _checkpoint(tmp_path / "final.pt", **changes)
    with pytest.raises(UserError, match=rf"final\.pt is not an ma2ml final checkpoint: {match}") as exc:
        load_checkpoint(path)
    _one_line(exc)


def test_planted_checkpoint_pickle_runs_nothing(tmp_path):
    from ma2ml.training.final import load_checkpoint

    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "final.pt"
    import torch

    torch.save({"format": "x", "record": _System(marker)}, path)
    with pytest.raises(UserError, match=r"final\.pt is not a readable ma2ml checkpoint \(UnpicklingError: "
                                        r".*GLOBAL posix\.system.*\); nothing in it was run") as exc:
        load_checkpoint(path)
    _one_line(exc)
    assert not marker.exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["dev zero", "fifo"])
def test_checkpoint_that_is_no_regular_file_is_refused_unread(tmp_path, kind):
    from ma2ml.training.final import load_checkpoint

    path, problem = _special(kind, tmp_path)
    with pytest.raises(UserError, match=f"^checkpoint {re.escape(str(path))}: {problem}"):
        load_checkpoint(path)


# -- the ImageFolder cache (np.load) ------------------------------------------------------------------
@pytest.mark.parametrize("x, y, match", [
    (np.array([{"a": 1}], dtype=object), np.zeros(1, np.int64), "Python objects in dtype"),
    (np.zeros((2, 3, 4, 4), np.uint8), np.array([_System], dtype=object), "Python objects in dtype"),
    (np.zeros((2, 3, 4, 4), np.float32), np.zeros(2, np.int64), r"holds images float32 \(2, 3, 4, 4\)"),
    (np.zeros((2, 3, 4, 4), np.uint8), np.zeros(3, np.int64), r"and labels int64 \(3,\)"),
])
def test_imagefolder_cache_never_unpickles_and_checks_its_arrays(tmp_path, x, y, match):
    from ma2ml.envs.tasks.imagefolder import _load_cache

    np.save(tmp_path / "x.npy", x, allow_pickle=True)
    np.save(tmp_path / "y.npy", y, allow_pickle=True)
    with pytest.raises(UserError, match=f"imagefolder: cache {re.escape(str(tmp_path))} .*{match}") as exc:
        _load_cache(tmp_path, 4)
    _one_line(exc)


def test_imagefolder_cache_header_claiming_more_than_the_file_is_refused(tmp_path):
    from ma2ml.envs.tasks.imagefolder import _load_cache

    np.save(tmp_path / "x.npy", np.zeros((2, 3, 4, 4), np.uint8))
    with open(tmp_path / "y.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<i8", "fortran_order": False, "shape": (10**12,)})
        fh.write(b"\0" * 16)
    with pytest.raises(UserError, match=r"cache .* is unreadable \(ValueError: mmap length is greater"):
        _load_cache(tmp_path, 4)
    np.save(tmp_path / "y.npy", np.arange(2))
    x, y = _load_cache(tmp_path, 4)
    assert x.shape == (2, 3, 4, 4) and y.tolist() == [0, 1]
