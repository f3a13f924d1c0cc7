"""``ma2ml compare --suite`` (issue 26, items 3 and 4): learners × a suite's tasks × seeds, normalised per task
against random search's exact expected regret, ranked across tasks, with the interaction control."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ma2ml import suites
from ma2ml.cli import main
from ma2ml.envs.core.errors import UserError
from ma2ml.suite_comparison import SuiteComparison, task_budgets
from ma2ml.suites import DIGITS, HARD, Suite, SuiteTask, random_search_regret

TINY = Suite("tiny-v0", "two small tasks for the tests", (
    SuiteTask("digits-fixed", DIGITS, {"table_seed": 0}, 20, "dev", "the digits table, fixed replicate"),
    SuiteTask("hard-fixed", HARD, {"table_seed": 0}, 20, "dev", "the hard tier, fixed replicate"),
    SuiteTask("digits-steep", DIGITS, {"table_seed": 0, "reward_exponent": -0.3}, 20, "test", "w = -0.3"),
))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(suites.SUITES, TINY.name, TINY)
    return TINY


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished suite comparison on the tiny suite's dev split (3 learners × 2 tasks × 2 seeds)."""
    mp = pytest.MonkeyPatch()
    mp.setitem(suites.SUITES, TINY.name, TINY)
    out = tmp_path_factory.mktemp("suite") / "cmp"
    comparison = SuiteComparison(out=out, suite="tiny-v0:dev", learners=["random", "independent", "evolution"],
                                 seeds=2, first_seed=7)
    stats = comparison.run(progress=False)
    yield comparison, stats
    mp.undo()


def test_every_task_is_a_comparison_at_its_budget(finished):
    comparison, stats = finished
    assert [t.name for t in comparison.tasks] == ["digits-fixed", "hard-fixed"]
    assert stats["tasks"] == ["digits-fixed", "hard-fixed"] and stats["seeds"] == [7, 8]
    for task in comparison.tasks:
        per_run = json.loads((comparison.out / "tasks" / task.name / "per_run.json").read_text())
        assert per_run["budgets"] == task_budgets(task.budget) == [2, 5, 10, 20]
        assert len(per_run["runs"]) == 6
    assert {p.name for p in comparison.out.iterdir()} >= {"suite.md", "suite.json", "ranks.png", "cd.png", "tasks"}


def test_the_score_is_the_true_regret_over_random_searchs_expected_regret(finished):
    comparison, stats = finished
    task = comparison.tasks[0]
    env = task.make()
    truth = env.evaluator.truth(env.reward_fn)
    observed = env.evaluator.seed_rewards(env.reward_fn)[:, 0]
    expected = random_search_regret(truth, observed, task.budget)
    assert stats["per_task"][task.name]["random_regret"] == pytest.approx(expected)
    per_run = json.loads((comparison.out / "tasks" / task.name / "per_run.json").read_text())
    regrets = [r["at_budget"]["true_regret"][-1] for r in per_run["runs"] if r["learner"] == "random"]
    assert stats["per_task"][task.name]["mean_score"]["random"] == pytest.approx(np.mean(regrets) / expected)


def test_the_report_ranks_across_tasks_and_flags_the_control(finished):
    _, stats = finished
    assert sorted(stats["learners"]) == ["evolution", "independent", "random"]
    iqm = [stats["iqm"][n]["value"] for n in stats["learners"]]
    assert iqm == sorted(iqm)  # ordered by IQM, best first
    for n in stats["learners"]:
        assert stats["iqm"][n]["low"] <= stats["iqm"][n]["value"] <= stats["iqm"][n]["high"]
    assert set(stats["control"]) == {"digits-fixed", "hard-fixed"}
    for flag in stats["control"].values():
        assert flag["best"] != "independent" and flag["flagged"] == (flag["low"] <= 0)
    assert stats["replication"]["seeds_a"] == [7] and stats["replication"]["seeds_b"] == [8]
    rho = stats["replication"]["spearman"]
    assert rho is None or -1.0 <= rho <= 1.0  # None: one half ranks every learner the same
    assert len(stats["friedman"]["ranks"]) == 3 and stats["friedman"]["tasks"] == 2


def test_every_learner_is_placed_against_the_control_on_every_task(finished):
    """Each task lands in exactly one of better / worse / not resolved, and the verdict follows the paired CI of
    control minus learner (the same bootstrap as the control flag: the best learner's 'better' is 'not flagged')."""
    comparison, stats = finished
    versus = stats["versus_control"]
    assert set(versus) == {"random", "evolution"}
    for name, verdicts in versus.items():
        placed = verdicts["better"] + verdicts["worse"] + verdicts["unresolved"]
        assert sorted(placed) == ["digits-fixed", "hard-fixed"], name
    for task, flag in stats["control"].items():
        assert (task in versus[flag["best"]]["better"]) == (not flag["flagged"])
    assert "better than independent" in (comparison.out / "suite.md").read_text()


def test_a_rerun_resumes_and_rewrites_the_same_report(finished):
    comparison, stats = finished
    before = (comparison.out / "suite.json").read_text()
    again = SuiteComparison(out=comparison.out, suite="tiny-v0:dev", learners=["random", "independent", "evolution"],
                            seeds=2, first_seed=7)
    mp = pytest.MonkeyPatch()
    mp.setitem(suites.SUITES, TINY.name, TINY)
    try:
        assert again.run(progress=False) == stats
    finally:
        mp.undo()
    assert (comparison.out / "suite.json").read_text() == before


def test_bad_suite_arguments_are_one_clear_error(tiny, tmp_path, capsys):
    with pytest.raises(UserError, match="unknown suite 'nope'; valid suites are"):
        SuiteComparison(out=tmp_path / "a", suite="nope", learners=["random"])
    with pytest.raises(UserError, match="--seeds must be an integer >= 2"):
        SuiteComparison(out=tmp_path / "a", suite="tiny-v0", learners=["random"], seeds=1)
    with pytest.raises(UserError, match="names a learner twice"):
        SuiteComparison(out=tmp_path / "a", suite="tiny-v0", learners=["random", "random"])
    assert main(["compare", "--suite", "tiny-v0", "--env", DIGITS, "--learners", "random",
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--env does not apply with --suite" in err[0]
    assert main(["compare", "--suite", "tiny-v0:train", "--learners", "random", "--out", str(tmp_path / "c")]) == 2
    assert "suite split 'train' is invalid; valid values are dev, test" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
