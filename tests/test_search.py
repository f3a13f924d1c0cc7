"""``ma2ml search``: its files, determinism on a CPU env, and one-line errors."""
from __future__ import annotations

import json
import re

import pytest

from ma2ml.cli import main

DIGITS = ["--env", "ma2ml/AutoML-Digits-v0", "--env-arg", "epochs=1", "--env-arg", "device=cpu"]


def search(tmp_path, name: str, *extra: str) -> tuple[int, object]:
    out = tmp_path / name
    rc = main(["search", *DIGITS, "--budget", "4", "--batch-size", "3", "--seed", "0", "--out", str(out), *extra])
    return rc, out


def test_search_writes_results_and_is_deterministic(tmp_path, capsys):
    rc, first = search(tmp_path, "a")
    assert rc == 0
    printed = capsys.readouterr().out
    assert "best reward" in printed and "\naug: " in printed
    assert "\nnas: normal cell:" in printed and "\nhpo: lr=" in printed
    rows = [json.loads(line) for line in (first / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2, 3] and [r["batch"] for r in rows] == [0, 0, 0, 1]
    assert set(rows[0]) == {"index", "batch", "tokens", "pipeline", "reward", "status", "metrics"}
    assert set(rows[0]["tokens"]) == {"aug", "nas", "hpo"} and "lr" in rows[0]["pipeline"]["hpo"]
    assert {"val_acc", "test_acc", "flops", "params", "curve", "seed"} <= set(rows[0]["metrics"])
    assert "train_seconds" not in json.dumps(rows)
    timings = [json.loads(line) for line in (first / "timings.jsonl").read_text().splitlines()]
    assert [t["index"] for t in timings] == [0, 1, 2, 3] and all(t["train_seconds"] > 0 for t in timings)
    best = json.loads((first / "best.json").read_text())
    assert best["reward"] == max(r["reward"] for r in rows) and best["settings"]["learner"] == "ma2ml"
    assert best["description"].splitlines()[0].startswith("aug: ")

    rc, second = search(tmp_path, "b")
    assert rc == 0
    assert (second / "results.jsonl").read_bytes() == (first / "results.jsonl").read_bytes()
    rc, other = search(tmp_path, "c", "--learner", "random")
    assert (other / "results.jsonl").read_bytes() != (first / "results.jsonl").read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "ma2ml/Nope-v0"], r"unknown env 'ma2ml/Nope-v0'; registered envs are \[.*'ma2ml/AutoML-Digits-v0'"),
        (["--learner", "nope"], r"unknown learner 'nope'; registered learners are \['ma2ml', 'ma2ml-onpolicy'"),
        (["--budget", "0"], r"--budget must be an integer in 1..10,000,000, got 0"),
        (["--batch-size", "-2"], r"--batch-size must be an integer in 1..100,000, got -2"),
        (["--learner-arg", "bogus=1"], r"learner 'ma2ml' has no setting \['bogus'\]; its settings are"),
        (["--learner-arg", "kl_coef=-1"], "MA2MLConfig.kl_coef = -1 is invalid"),
        (["--learner-arg", "oops"], "--learner-arg expects KEY=VALUE"),
        (["--env-arg", "bogus=1"], "does not take these arguments.*bogus"),
        (["--env", "ma2ml/AutoML-CIFAR10-v0"], "cifar10 needs --data-dir"),
    ],
)
def test_search_errors_are_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    rc = main(["search", "--out", str(out), "--budget", "2", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("ma2ml search: error: ")

    assert re.search(message, err), err
    assert not out.exists()


def test_search_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text("{}\n")
    assert main(["search", "--out", str(out)]) == 2
    assert "holds results.jsonl but no run.json; choose a new --out folder" in capsys.readouterr().err
    assert (out / "results.jsonl").read_text() == "{}\n"


def test_list_shows_learners(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Learners:" in out and "ma2ml-lite" in out and "evolution" in out


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path):
    """Kill a real-training search with SIGKILL mid-run, resume it, check the store."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ma2ml.runtime.store import EvalStore

    out = tmp_path / "run"
    args = ["search", *DIGITS, "--learner", "ma2ml", "--budget", "12", "--batch-size", "3", "--seed", "1",
            "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ma2ml", *args], env=env, stderr=subprocess.DEVNULL)
    store_path = out / "evals.sqlite"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if store_path.exists():
            with EvalStore(store_path) as store:
                if store.count("search") >= 5:  # past one checkpoint, inside the second batch
                    break
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with EvalStore(store_path) as store:
        before = {e.index: (e.key, e.record.to_dict()) for e in store.evaluations("search")}
    assert 5 <= len(before) < 12
    assert main(args) == 0  # resume
    with EvalStore(store_path) as store:
        after = store.evaluations("search")
    assert sorted(e.index for e in after) == list(range(12))  # every evaluation exactly once
    for e in after:  # finished evaluations were neither lost nor trained again
        if e.index in before:
            assert (e.key, e.record.to_dict()) == before[e.index]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(12))
    assert json.loads((out / "best.json").read_text())["evaluations"] == 12
    # the learner was restored exactly: the same run uninterrupted writes the same results
    reference = tmp_path / "reference"
    assert main([*args[:-1], str(reference)]) == 0
    assert (reference / "results.jsonl").read_text() == (out / "results.jsonl").read_text()
