"""``ma2ml compare`` end to end on the benchmark table: every output file, resume, errors."""
from __future__ import annotations

import json

from ma2ml.cli import main

ARGS = ["compare", "--env", "ma2ml/AutoML-DigitsBench-v0", "--env-arg", "table_seed=0", "--learners",
        "random,evolution", "--seeds", "2", "--budget", "20", "--batch-size", "5", "--top-k", "3"]


def test_compare_writes_every_output_and_resumes(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main([*ARGS, "--out", str(out)]) == 0
    for name in ("summary.md", "regret.png", "top3.png", "batch_scatter.png", "marl_eval.json"):
        assert (out / name).stat().st_size > 0, name
    for learner in ("random", "evolution"):
        for seed in (0, 1):
            rows = (out / "runs" / learner / f"seed{seed}" / "results.jsonl").read_text().splitlines()
            assert len(rows) == 20 and json.loads(rows[0])["batch"] == 0
    summary = (out / "summary.md").read_text()
    assert "simple regret" in summary and "Optimum (known from the table): 0.9583" in summary
    data = json.loads((out / "marl_eval.json").read_text())
    assert set(data["ma2ml/AutoML-DigitsBench-v0"]["ma2ml"]) == {"random", "evolution"}
    # a rerun finds every run finished and only rewrites the report, identically
    before = (out / "runs" / "random" / "seed0" / "results.jsonl").stat().st_mtime_ns
    assert main([*ARGS, "--out", str(out)]) == 0
    assert (out / "runs" / "random" / "seed0" / "results.jsonl").stat().st_mtime_ns == before
    assert (out / "summary.md").read_text() == summary


def test_compare_bad_input_is_one_line(tmp_path, capsys):
    assert main(["compare", "--learners", "ma2ml,nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown learner 'nope'; registered learners are" in err and "Traceback" not in err
    assert main(["compare", "--learners", "random", "--seeds", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--seeds must be an integer in 1..10,000, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
