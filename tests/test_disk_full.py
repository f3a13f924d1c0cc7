"""A full disk ends in one line that names the file: every file a run or a comparison writes.

A full disk fails in ``write``, ``flush`` or ``fsync``, whose ``OSError`` names no file; the run
folder's writers (:func:`ma2ml.runfolder.names_file`) and the report's add the path, and the
CLI prints ``No space left on device: PATH`` (exit code 2). The store names itself already
(``StoreError``). The run folder stays resumable: the same command finishes the run once
there is room again.
"""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

import ma2ml.experiment as experiment_module
import ma2ml.envs.core.files as files
from ma2ml.cli import main

TABLE = ["--env", "ma2ml/AutoML-DigitsBench-v0", "--learner", "random", "--budget", "20", "--batch-size", "5"]


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file name


def one_line(capsys) -> str:
    """The one line of stderr that is not a progress bar."""
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("name", ["run.json", "results.jsonl", "timings.jsonl", "checkpoint.pt", "best.json"])
def test_a_full_disk_on_an_atomic_write_names_the_file(tmp_path, monkeypatch, capsys, name):
    real = files.atomic_write

    def atomic_write(path, write):
        if Path(path).name == name:
            raise disk_full()
        return real(path, write)

    out = tmp_path / "run"
    monkeypatch.setattr(files, "atomic_write", atomic_write)
    assert main(["search", *TABLE, "--out", str(out)]) == 2
    assert one_line(capsys) == f"ma2ml search: error: No space left on device: {out / name}"
    monkeypatch.undo()
    if (out / "run.json").exists():  # room again: the same command finishes the run
        assert main(["search", *TABLE, "--out", str(out)]) == 0
        assert json.loads((out / "best.json").read_text())["evaluations"] == 20


class _FullFile:
    """A text file whose writes fail as on a full disk."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, text):
        raise disk_full()

    def __getattr__(self, attr):
        return getattr(self._fh, attr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


@pytest.mark.parametrize("name", ["results.jsonl", "timings.jsonl"])
def test_a_full_disk_on_a_log_append_names_the_log(tmp_path, monkeypatch, capsys, name):
    def full_open(path, mode="r", **kwargs):
        fh = open(path, mode, **kwargs)
        return _FullFile(fh) if Path(path).name == name and "a" in mode else fh

    out = tmp_path / "run"
    monkeypatch.setattr(experiment_module, "open", full_open, raising=False)
    assert main(["search", *TABLE, "--out", str(out)]) == 2
    assert one_line(capsys) == f"ma2ml search: error: No space left on device: {out / name}"
    monkeypatch.undo()
    assert main(["search", *TABLE, "--out", str(out)]) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 20


@pytest.mark.parametrize("name", ["summary.md", "top3.png", "per_run.json"])
def test_a_full_disk_on_a_report_file_names_it(tmp_path, monkeypatch, capsys, name):
    import ma2ml.report as report

    real_write_text = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name == name:
            raise disk_full()
        return real_write_text(self, *args, **kwargs)

    def plot_topk(*args, **kwargs):
        raise disk_full()

    monkeypatch.setattr(Path, "write_text", write_text)
    if name == "top3.png":
        monkeypatch.setattr(report, "plot_topk", plot_topk)
    out = tmp_path / "cmp"
    args = ["compare", "--env", "ma2ml/AutoML-DigitsBench-v0", "--learners", "random", "--seeds", "2", "--budget",
            "10", "--batch-size", "5", "--top-k", "3", "--out", str(out)]
    assert main(args) == 2
    assert one_line(capsys) == f"ma2ml compare: error: No space left on device: {out / name}"
