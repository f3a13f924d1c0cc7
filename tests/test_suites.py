"""Benchmark suites (issue 26, item 2): named, versioned task lists with a dev/test split, and what each
task is like, computed from its table."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from ma2ml.cli import main
from ma2ml.envs.core.errors import UserError
from ma2ml.suites import SUITES, TABLES_V0, TABLES_V1, get_suite, random_search_regret, task_properties


def test_every_task_makes_its_env_and_the_splits_are_disjoint():
    names = [t.name for t in TABLES_V0.tasks]
    assert len(names) == len(set(names))
    assert {t.split for t in TABLES_V0.tasks} == {"dev", "test"}
    assert len(TABLES_V0.split("dev")) == 6 and len(TABLES_V0.split("test")) == 6
    for task in TABLES_V0.tasks:
        env = task.make()
        assert env.evaluator.truth(env.reward_fn).shape == (env.evaluator.layout.pipelines,)


def test_a_suite_is_named_with_its_split_or_refused():
    assert get_suite("tables-v0:test") == (TABLES_V0, "test") and get_suite("tables-v0") == (TABLES_V0, None)
    with pytest.raises(UserError, match="unknown suite 'nope'; valid suites are tables-v0, tables-v1"):
        get_suite("nope")
    with pytest.raises(UserError, match="suite split 'train' is invalid; valid values are dev, test"):
        get_suite("tables-v0:train")
    assert list(SUITES) == ["tables-v0", "tables-v1"]


def test_random_searchs_expected_regret_is_exact():
    """Against brute force: every subset of n of 9 pipelines, equally likely, recommends its best observed."""
    rng = np.random.default_rng(3)
    truth = rng.random(9)
    observed = truth + rng.normal(0, 0.2, 9)
    for n in (1, 3, 9):
        subsets = list(itertools.combinations(range(9), n))
        brute = np.mean([truth.max() - truth[max(s, key=lambda i: observed[i])] for s in subsets])
        assert random_search_regret(truth, observed, n) == pytest.approx(brute, abs=1e-12)


def test_a_tasks_properties_come_from_its_table():
    task = next(t for t in TABLES_V0.tasks if t.name == "digits-replicate0")
    q = task_properties(task)
    assert q["pipelines"] == 5184 and q["optimum"] == pytest.approx(0.9583, abs=1e-4) and not q["noisy"]
    assert 0 < q["random_regret"] < 0.1 and q["random_evals_to_top"] == pytest.approx(5185 / 6)


def test_the_cli_lists_the_suites(capsys):
    assert main(["bench", "suites", "--suite", "tables-v0:dev"]) == 0
    out = capsys.readouterr().out
    assert "tables-v0:dev" in out and "digits-epoch2" in out and "hard-default" not in out
    assert main(["bench", "suites", "--suite", "nope"]) == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err


def test_tables_v1_has_the_issues_tasks_on_four_frozen_tables():
    """>= 12 test and >= 6 dev tasks, >= 3 test tasks on the new tables; every task's env on a frozen table."""
    from ma2ml.bench.hard.tables import SUITE_REWARD_ARGS
    from ma2ml import suites

    test, dev = TABLES_V1.split("test"), TABLES_V1.split("dev")
    assert len(test) >= 12 and len(dev) >= 6
    assert sum(t.env in (suites.MNIST, suites.SHAPES) for t in test) >= 3
    assert len({t.name for t in TABLES_V1.tasks}) == len(TABLES_V1.tasks)
    assert (suites.MNIST_C, suites.MNIST_B) == (SUITE_REWARD_ARGS["mnist"]["flops_constraint"],
                                                SUITE_REWARD_ARGS["mnist"]["training_budget"])
    assert (suites.SHAPES_C, suites.SHAPES_B) == (SUITE_REWARD_ARGS["shapes"]["flops_constraint"],
                                                  SUITE_REWARD_ARGS["shapes"]["training_budget"])
    for task in TABLES_V1.tasks:
        env = task.make()
        ev = env.evaluator
        assert ev.bench.sha256 is not None and ev.table.sha256 == ev.bench.sha256, task.name
        assert env.evaluator.truth(env.reward_fn).shape == (ev.layout.pipelines,)
