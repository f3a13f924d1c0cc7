"""``ma2ml compare`` trusts no log: a run's numbers come from its evaluation store.

A comparison is run once, its per-run numbers kept; then one run's ``results.jsonl`` (or
``timings.jsonl``) is truncated, forged or reordered, and the same command must report the
same numbers, rewrite the log from the store and say so in one line. A store short of the
budget is resumed; a store short of its own checkpoint is refused.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from ma2ml.cli import main

BUDGET = 40


def compare_args(out: Path) -> list[str]:
    return ["compare", "--env", "ma2ml/AutoML-DigitsBench-v0", "--learners", "random", "--seeds", "2",
            "--budget", str(BUDGET), "--batch-size", "10", "--budgets", "10,20", "--out", str(out)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, bytes, bytes, bytes]:
    """A finished comparison: its folder, ``per_run.json``, ``summary.md`` and seed 0's ``results.jsonl``."""
    out = tmp_path_factory.mktemp("trust") / "cmp"
    assert main(compare_args(out)) == 0
    return (out, (out / "per_run.json").read_bytes(), (out / "summary.md").read_bytes(),
            (out / "runs" / "random" / "seed0" / "results.jsonl").read_bytes())


def _truncate(lines: list[str]) -> list[str]:
    return lines[:15]


def _forge(lines: list[str]) -> list[str]:
    row = json.loads(lines[3])
    row["reward"] = 1e9
    return [*lines[:3], json.dumps(row), *lines[4:]]


def _forge_extra(lines: list[str]) -> list[str]:
    row = {**json.loads(lines[0]), "index": 999, "reward": 1e9}
    return [*lines, json.dumps(row)]


def _reorder(lines: list[str]) -> list[str]:
    rows = [json.loads(line) for line in lines]
    rewards = [r["reward"] for r in rows][::-1]  # the indexes stay, the rewards move
    return [json.dumps({**r, "reward": w}) for r, w in zip(rows, rewards)]


def _shuffle(lines: list[str]) -> list[str]:
    return lines[::-1]


def _empty(lines: list[str]) -> list[str]:
    return []


@pytest.mark.parametrize("damage", [_truncate, _forge, _forge_extra, _reorder, _shuffle, _empty])
def test_a_damaged_results_file_changes_no_number(reference, damage, capsys):
    out, per_run, summary, results = reference
    path = out / "runs" / "random" / "seed0" / "results.jsonl"
    path.write_text("".join(line + "\n" for line in damage(results.decode().splitlines())))
    capsys.readouterr()
    assert main(compare_args(out)) == 0
    assert (out / "per_run.json").read_bytes() == per_run
    assert (out / "summary.md").read_bytes() == summary
    assert path.read_bytes() == results  # rebuilt from the store
    err = [line for line in capsys.readouterr().err.splitlines() if "results.jsonl" in line]
    assert len(err) == 1 and "rebuilt it from the run's store" in err[0] and str(path) in err[0], err


def test_a_removed_results_file_is_rebuilt(reference, capsys):
    out, per_run, _, results = reference
    path = out / "runs" / "random" / "seed1" / "results.jsonl"
    reference_seed1 = path.read_bytes()
    path.unlink()
    assert main(compare_args(out)) == 0
    assert (out / "per_run.json").read_bytes() == per_run
    assert path.read_bytes() == reference_seed1
    assert f"{path} was missing; rebuilt it" in capsys.readouterr().err


def test_forged_timings_are_rebuilt_too(reference, capsys):
    out, per_run, _, _ = reference
    path = out / "runs" / "random" / "seed0" / "timings.jsonl"
    timings = path.read_bytes()
    path.write_text(json.dumps({"index": 0, "train_seconds": 1e9}) + "\n")
    assert main(compare_args(out)) == 0
    assert path.read_bytes() == timings
    assert (out / "per_run.json").read_bytes() == per_run
    assert "timings.jsonl differed from the store at line 1; rebuilt it" in capsys.readouterr().err


def test_an_intact_run_is_not_rewritten_and_says_nothing(reference, capsys):
    out, per_run, _, _ = reference
    assert main(compare_args(out)) == 0  # mend whatever an earlier test left
    path = out / "runs" / "random" / "seed0" / "results.jsonl"
    before = path.stat().st_mtime_ns
    capsys.readouterr()
    assert main(compare_args(out)) == 0
    assert path.stat().st_mtime_ns == before
    assert "rebuilt" not in capsys.readouterr().err
    assert (out / "per_run.json").read_bytes() == per_run


def test_a_forged_best_json_count_resumes_from_the_store(tmp_path, reference, capsys):
    # best.json is not the record either: a run whose store is short of the budget is resumed
    _, per_run, _, _ = reference
    out = tmp_path / "cmp"
    args = compare_args(out)
    args[args.index(str(BUDGET))] = "30"
    assert main(args) == 0
    best = out / "runs" / "random" / "seed1" / "best.json"
    best.write_text(json.dumps({**json.loads(best.read_text()), "evaluations": BUDGET}))
    assert main(compare_args(out)) == 0  # seed 1 holds 30 evaluations whatever best.json says: it runs 10 more
    assert json.loads(best.read_text())["evaluations"] == BUDGET
    assert (out / "per_run.json").read_bytes() == per_run  # the same as running 40 at once


def test_a_store_short_of_its_checkpoint_is_refused(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(compare_args(out)) == 0
    store = out / "runs" / "random" / "seed0" / "evals.sqlite"
    with sqlite3.connect(store) as conn:
        conn.execute("DELETE FROM evaluations WHERE eval_index >= 15")
    conn.close()
    capsys.readouterr()
    assert main(compare_args(out)) == 2
    err = capsys.readouterr().err
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip() and not line.startswith("runs:")]
    assert len(lines) == 1 and "Traceback" not in err, err  # one line beside the progress bar, if it showed
    assert "holds 15 of the 40 evaluations the checkpoint recorded" in err and str(store) in err
