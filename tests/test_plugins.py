"""Bring your own learner: entry points of installed packages, and ``module:Class`` names, in search and compare."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pettingzoo
import pytest

import ma2ml.learners as registry
import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.learners import learner_config, learner_names, learner_spec, make_learner
from ma2ml.cli import main

TABLE = ["--env", "ma2ml/AutoML-DigitsBench-v0", "--env-arg", "table_seed=0"]
MODULE = "ma2ml_test_plugin"
PLUGIN = '''
"""A user's learner, as a package would ship it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ma2ml.agents import Learner, LearnerConfig


@dataclass
class HillConfig(LearnerConfig):
    """Hill climbing."""

    start: int = 4
    """Uniform pipelines before the climb."""


class Hill(Learner):
    """Hill climbing: one token of the best pipeline so far set at random."""

    config_class = HillConfig

    def __init__(self, env, config=None, seed=0):
        super().__init__(env, config, seed)
        self.best = None

    def _ask(self, n):
        rows = self.rng.integers(0, self.joint_nvec, size=(n, len(self.joint_nvec)))
        if self.best is not None and self.num_evaluations >= self.config.start:
            rows[:] = self.best[1]
            t = self.rng.integers(0, len(self.joint_nvec), size=n)
            rows[np.arange(n), t] = self.rng.integers(0, self.joint_nvec[t])
        return self.split(rows)

    def _tell(self, joint, rewards, records):
        i = int(np.argmax(rewards))
        if self.best is None or rewards[i] > self.best[0]:
            self.best = (float(rewards[i]), joint[i].copy())

    def state_dict(self):
        return {**super().state_dict(), "best": self.best and (self.best[0], self.best[1].tolist())}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.best = state["best"] and (state["best"][0], np.asarray(state["best"][1], dtype=np.int64))


def not_a_learner():
    return None
'''


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on ``sys.path`` holding the plugin module; a fresh registry that reads entry points again."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / f"{MODULE}.py").write_text(PLUGIN)
    (folder / "broken_learners.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_entry_points_read", False)
    yield folder
    for name in (MODULE, "broken_learners"):
        sys.modules.pop(name, None)


def install(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    """An installed distribution as ``importlib.metadata`` finds it: a ``*.dist-info`` folder."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")


def table_env() -> object:
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    env.reset(seed=0)
    return env


def search_and_compare(learner: str, tmp_path: Path, capsys) -> None:
    """``learner`` runs in ``ma2ml search`` and ``ma2ml compare`` like a built-in."""
    out = tmp_path / "search"
    assert main(["search", *TABLE, "--learner", learner, "--budget", "12", "--batch-size", "4",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and json.loads((out / "run.json").read_text())["learner"] == learner
    out = tmp_path / "compare"
    assert main(["compare", *TABLE, "--learners", f"{learner},random", "--seeds", "1", "--budget", "8",
                 "--batch-size", "4", "--top-k", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    assert learner in (out / "summary.md").read_text()


def test_entry_point_learner_is_listed_made_and_runs_in_search_and_compare(site, tmp_path, capsys):
    install(site, "ma2ml-test-plugin", {"hill": f"{MODULE}:Hill", "broken": "broken_learners:Nope"})
    registered = list(registry._REGISTRY)
    assert learner_names() == [*registered, "hill", "broken"] and MODULE not in sys.modules  # listing imports nothing
    assert learner_spec("hill").description == f"{MODULE}:Hill (from ma2ml-test-plugin)"
    assert type(learner_config("hill", start=2)).__name__ == "HillConfig"  # the class's config_class
    assert type(make_learner("hill", table_env(), seed=0)).__name__ == "Hill"
    with pytest.raises(ValueError, match=r"learner 'broken': cannot import module 'broken_learners' "
                                         r"\(RuntimeError: boom at import\)"):
        make_learner("broken", table_env())
    assert main(["list"]) == 0 and f"hill            {MODULE}:Hill (from ma2ml-test-plugin)" in capsys.readouterr().out
    search_and_compare("hill", tmp_path, capsys)


def test_an_entry_point_cannot_take_a_registered_name(site):
    install(site, "ma2ml-test-plugin", {"random": f"{MODULE}:Hill"})
    with pytest.warns(UserWarning, match=r"entry point random = ma2ml_test_plugin:Hill of ma2ml-test-plugin is "
                                         r"skipped: learner 'random' is already registered as "
                                         r"ma2ml.baselines.random_search:RandomSearch; rename the entry point"):
        names = learner_names()
    assert names.count("random") == 1
    assert type(make_learner("random", table_env())).__name__ == "RandomSearch"


def test_module_class_names_run_in_make_learner_search_and_compare(site, tmp_path, capsys):
    learner = make_learner(f"{MODULE}:Hill", table_env(), seed=0, start=2)
    assert type(learner).__name__ == "Hill" and learner.config.start == 2
    assert f"{MODULE}:Hill" not in learner_names()  # used, not registered
    search_and_compare(f"{MODULE}:Hill", tmp_path, capsys)


@pytest.mark.parametrize("name, message", [
    ("no_such_module_xyz:Hill", "cannot import module 'no_such_module_xyz' (ModuleNotFoundError: No module named "
                                "'no_such_module_xyz'); install it or put its folder on PYTHONPATH"),
    ("broken_learners:Hill", "cannot import module 'broken_learners' (RuntimeError: boom at import)"),
    (f"{MODULE}:Hil", f"module '{MODULE}' has no attribute 'Hil'"),
    (f"{MODULE}:not_a_learner", f"{MODULE}:not_a_learner is <function not_a_learner"),
    (f"{MODULE}:HillConfig", "not a subclass of ma2ml.agents.Learner"),
])
def test_a_bad_module_class_name_is_one_error(site, tmp_path, capsys, name, message):
    with pytest.raises(ValueError, match="^" + re.escape(f"learner {name!r}: ")):
        make_learner(name, table_env())
    out = tmp_path / "out"
    for argv in (["search", *TABLE, "--learner", name], ["compare", *TABLE, "--learners", f"random,{name}"]):
        assert main([*argv, "--budget", "4", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()
