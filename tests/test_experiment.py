"""The :class:`ma2ml.Experiment` behind ``ma2ml search`` and the :class:`~ma2ml.comparison.Comparison` behind
``ma2ml compare``: the same run from Python and from the CLI, checks at construction, ``--executor``
and ``--workers``, and the ground truth an evaluator declares."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ma2ml
from ma2ml.cli import main
from ma2ml.envs.core.errors import UserError
from ma2ml.experiment import Experiment

TABLE = "ma2ml/AutoML-DigitsBench-v0"
SEARCH = ["search", "--env", TABLE, "--learner", "random", "--budget", "8", "--batch-size", "4"]


def test_an_experiment_is_the_search_command(tmp_path, capsys):
    best = ma2ml.Experiment(env=TABLE, learner="random", budget=8, batch_size=4, out=tmp_path / "py").run(progress=False)
    assert best["evaluations"] == 8 and best["description"].startswith("aug: ")
    assert main([*SEARCH, "--out", str(tmp_path / "cli")]) == 0
    for name in ("results.jsonl", "run.json"):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert Experiment(env=TABLE, learner="random", budget=8, batch_size=4, out=tmp_path / "py").finished()
    assert not Experiment(env=TABLE, learner="random", budget=12, batch_size=4, out=tmp_path / "py").finished()


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": 0}, "--budget must be an integer in 1..10,000,000, got 0"),
    ({"learner": "nope"}, "unknown learner 'nope'"),
    ({"env_args": {"store": "x.sqlite"}}, "is set by ma2ml itself"),
    ({"env_args": {"epochs": float("nan")}}, "--env-arg epochs = nan is invalid"),
    ({"executor": "cluster"}, "--executor must be one of inprocess, process, ray"),
    ({"workers": 2}, "--workers 2 needs --executor process"),
    ({"executor": "process", "workers": 0}, "--workers must be an integer in 1..1024"),
    ({"executor": "ray", "env_args": {"executor": "process"}}, "executor is given twice"),
])
def test_bad_settings_are_refused_at_construction(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        Experiment(env=TABLE, out=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_a_process_pool_search_matches_in_process_and_resumes_under_another_executor(tmp_path, capsys):
    assert main([*SEARCH, "--out", str(tmp_path / "here")]) == 0
    pool = tmp_path / "pool"
    assert main([*SEARCH, "--out", str(pool), "--executor", "process", "--workers", "2"]) == 0
    assert (pool / "results.jsonl").read_bytes() == (tmp_path / "here" / "results.jsonl").read_bytes()
    assert "executor" not in json.loads((pool / "run.json").read_text())  # where evaluations run is no setting
    extend = [*SEARCH, "--out", str(pool), "--executor", "inprocess"]
    extend[extend.index("8")] = "12"
    assert main(extend) == 0
    assert len((pool / "results.jsonl").read_text().splitlines()) == 12


@pytest.mark.parametrize("extra, message", [
    (["--workers", "2"], "--workers 2 needs --executor process"),
    (["--executor", "ray", "--env-arg", "executor=process"], "executor is given twice"),
])
@pytest.mark.parametrize("command", ["search", "compare"])
def test_executor_flag_errors_are_one_line(tmp_path, capsys, command, extra, message):
    args = SEARCH if command == "search" else ["compare", "--learners", "random", "--seeds", "1", "--budget", "8", "--top-k", "3"]
    out = tmp_path / "out"
    assert main([*args, "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert not out.exists()


def test_an_unknown_executor_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*SEARCH, "--out", str(tmp_path / "o"), "--executor", "cluster"])
    assert exit_.value.code == 2 and "argument --executor: invalid choice: 'cluster'" in capsys.readouterr().err


def test_compare_runs_on_a_process_pool(tmp_path, capsys):
    args = ["compare", "--learners", "random", "--seeds", "1", "--budget", "8", "--batch-size", "4", "--budgets", "4",
            "--top-k", "3"]
    assert main([*args, "--out", str(tmp_path / "here")]) == 0
    assert main([*args, "--out", str(tmp_path / "pool"), "--executor", "process", "--workers", "2"]) == 0
    for name in ("per_run.json", "runs/random/seed0/results.jsonl"):
        assert (tmp_path / "pool" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name


def test_help_names_the_flags_and_compare_its_default_env():
    for command in ("search", "compare"):
        out = subprocess.run([sys.executable, "-m", "ma2ml", command, "--help"], capture_output=True, text=True,
                             check=True, env={**os.environ, "COLUMNS": "400"}).stdout
        text = " ".join(out.split())
        assert "where evaluations run: inprocess, process (a local pool), ray" in text, out
        assert "--workers" in text
    assert f"(default {TABLE}" in text


@pytest.mark.slow  # starting Ray takes about a minute on a busy 2-core machine
def test_a_ray_search_matches_in_process(tmp_path, capsys):
    assert main([*SEARCH, "--out", str(tmp_path / "here")]) == 0
    assert main([*SEARCH, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert (tmp_path / "ray" / "results.jsonl").read_bytes() == (tmp_path / "here" / "results.jsonl").read_bytes()


def test_ground_truth_is_declared_by_the_evaluator():
    from ma2ml.bench.synthetic import SyntheticEvaluator
    from ma2ml.comparison import Known

    table = ma2ml.make(TABLE)
    known = Known.of(table)
    assert known.truth is not None and known.optimum is not None and known.true_optimum is not None
    assert table.evaluator.truth(table.reward_fn).shape == (table.evaluator.layout.pipelines,)
    synthetic = SyntheticEvaluator(game=0)
    assert synthetic.truth(lambda *a: 0.0) is None  # the base's declaration: no ground truth known
    training = ma2ml.make("ma2ml/AutoML-Digits-v0")
    assert Known.of(training) == Known()
    for env in (table, training):
        env.close()


def test_import_ma2ml_stays_light():
    code = "import sys, ma2ml; print(sorted(m for m in sys.modules if m.startswith('ma2ml')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['ma2ml']"
    code = "import ma2ml; print(ma2ml.Experiment.__module__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "ma2ml.experiment"
