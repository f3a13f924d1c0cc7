"""``ma2ml compare`` end to end on the benchmark table: every output file, resume, determinism, errors."""
from __future__ import annotations

import json

from ma2ml.cli import main
from ma2ml.experiment import MAX_SEED

ARGS = ["compare", "--env", "ma2ml/AutoML-DigitsBench-v0", "--env-arg", "table_seed=0", "--learners",
        "random,evolution", "--seeds", "2", "--budget", "20", "--batch-size", "5", "--top-k", "3", "--budgets", "5,10"]
REPORT = ("summary.md", "per_run.json", "marl_eval.json")
"""The outputs that hold no wall-clock figure: byte-identical across reruns on CPU."""


def test_compare_writes_every_output_and_resumes(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main([*ARGS, "--out", str(out)]) == 0
    for name in ("summary.md", "regret.png", "top3.png", "batch_scatter.png", "anytime.png", "performance_profile.png",
                 "best_so_far_seconds.png", "marl_eval.json", "per_run.json", "wall_seconds.json"):
        assert (out / name).stat().st_size > 0, name
    for learner in ("random", "evolution"):
        for seed in (0, 1):
            rows = (out / "runs" / learner / f"seed{seed}" / "results.jsonl").read_text().splitlines()
            assert len(rows) == 20 and json.loads(rows[0])["batch"] == 0
    summary = (out / "summary.md").read_text()
    assert "simple regret" in summary and "Optimum (known from the table): 0.9583" in summary
    for part in ("| n = 5 | n = 10 | n = 20 | area", "true regret of the recommendation", "distinct pipelines per run",
                 "### Probability of improvement", "### Power", "IQM [95% CI]"):
        assert part in summary, part
    assert "wall" not in summary.lower() and "second" not in summary.lower()
    data = json.loads((out / "marl_eval.json").read_text())
    algos = data["ma2ml/AutoML-DigitsBench-v0"]["ma2ml"]
    assert set(algos) == {"random", "evolution"}
    assert [algos["random"]["run_0"][f"step_{i}"]["step_count"] for i in range(3)] == [5, 10, 20]
    per_run = json.loads((out / "per_run.json").read_text())
    assert per_run["budgets"] == [5, 10, 20] and per_run["score"] == "true_regret"
    seeds = {learner: sorted(r["seed"] for r in per_run["runs"] if r["learner"] == learner)
             for learner in ("random", "evolution")}
    assert seeds == {"random": [0, 1], "evolution": [0, 1]}  # paired: the same seeds for every learner
    # a rerun finds every run finished and only rewrites the report, identically
    before = (out / "runs" / "random" / "seed0" / "results.jsonl").stat().st_mtime_ns
    assert main([*ARGS, "--out", str(out)]) == 0
    assert (out / "runs" / "random" / "seed0" / "results.jsonl").stat().st_mtime_ns == before
    assert (out / "summary.md").read_text() == summary


def test_compare_is_byte_identical_across_fresh_runs_and_jobs(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*ARGS, "--out", str(one)]) == 0
    assert main([*ARGS, "--jobs", "2", "--out", str(two)]) == 0  # two worker processes, one torch thread each
    for name in REPORT:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_default_seeds_depend_on_whether_the_env_knows_its_truth(tmp_path, capsys):
    # the seed range check names the count: 30 on the table (it knows its truth), 10 on real training
    first = MAX_SEED - 5
    table = ["compare", "--env", "ma2ml/AutoML-DigitsBench-v0", "--learners", "random", "--first-seed", str(first),
             "--out", str(tmp_path / "x")]
    assert main(table) == 2
    assert f"got {first + 29}" in capsys.readouterr().err
    training = ["compare", "--env", "ma2ml/AutoML-Digits-v0", "--learners", "random", "--first-seed", str(first),
                "--out", str(tmp_path / "x")]
    assert main(training) == 2
    assert f"got {first + 9}" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_compare_bad_input_is_one_line(tmp_path, capsys):
    assert main(["compare", "--learners", "ma2ml,nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown learner 'nope'; registered learners are" in err and "Traceback" not in err
    assert main(["compare", "--learners", "random", "--seeds", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--seeds must be an integer in 1..10,000, got 0" in capsys.readouterr().err
    for bad in ("", "10,x", "0,5", "-3"):
        assert main(["compare", "--learners", "random", "--budgets", bad, "--out", str(tmp_path / "x")]) == 2
        assert "--budgets must be comma-separated positive integers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
