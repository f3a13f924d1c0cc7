"""What earlier versions wrote still works: settings hashes are pinned, old run folders resume.

``tests/fixtures/run_v0_reinforce/`` is a run folder written by ma2ml at commit 8350972
(November 2026, before run-folder locks, batch boundaries in checkpoints and
``weights_only`` loading): ``ma2ml search --env ma2ml/AutoML-DigitsBench-v0 --env-arg
table_seed=0 --learner reinforce --budget 20 --batch-size 5 --seed 7``. The golden hashes are
the store's settings hashes that commit computed (``ma2ml.runtime.store.run_settings``); a change
to them would make every existing store refuse to resume and lose its cache.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pettingzoo
import pytest

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.cli import main
from ma2ml.runtime.store import EvalStore, canonical_json, run_settings

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0_reinforce"

GOLDEN = [
    # digits trained 8 epochs by default until December 2026 (4 since): stores of then resume with epochs=8
    ("ma2ml/AutoML-Digits-v0", {"epochs": 8}, "drawn", "d1bb5dc1c211574e662b60f5a8083f407374ee84c33f47e05e7d5f110e819290"),
    ("ma2ml/AutoML-Digits-v0", {"epochs": 8}, "fixed:0",
     "70147e63035901756c93b5bc6703dcd87cb5ebfc873a68025d3a490c7f49dd65"),
    ("ma2ml/AutoML-Digits-v0", {}, "drawn", "6ee09b20d782e4a820e468847c7a78bd25fa71f674bde5fd76481745c2c4a98c"),
    ("ma2ml/AutoML-Digits-v0", {"agents": ["nas", "hpo"], "epochs": 2}, "drawn",
     "f83bedc2ad345920cb2b9a92ecf71cf7d78eae37bca1311529b3089361ad348d"),
    ("ma2ml/AutoML-DigitsBench-v0", {"table_seed": 0}, "drawn",
     "64afacb57f9459ef70532e0d8fb91147588a035adcef6f9ab9ac0c07e2bbcbc1"),
]


@pytest.mark.parametrize("env_id, kwargs, policy, digest", GOLDEN, ids=[f"{g[0]}-{g[2]}-{len(g[1])}" for g in GOLDEN])
def test_settings_hashes_are_pinned(env_id, kwargs, policy, digest):
    """The hashes of November 2026: a table env's are its legacy settings now (the key before table hashes),
    under which those stores still resume."""
    env = pettingzoo.make("parallel", env_id, **kwargs)
    text = canonical_json(run_settings(env.evaluator, policy, legacy="Bench" in env_id))
    assert hashlib.sha256(text.encode()).hexdigest() == digest, text


TABLE_GOLDEN = "edd80df5fb4419ad993c1ad6e2a030102c6f951470ea911e4f2c03f2c376da4f"
"""The digits table's settings hash since table hashes (December 2026): the frozen file's SHA-256 is in it."""


def test_a_table_settings_hash_holds_its_content_hash():
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    settings = run_settings(env.evaluator, "drawn")
    assert settings["evaluator"]["table_sha256"] == hashlib.sha256(
        (Path(env.evaluator.bench.path)).read_bytes()).hexdigest()
    assert hashlib.sha256(canonical_json(settings).encode()).hexdigest() == TABLE_GOLDEN


def test_a_moved_space_class_keeps_its_name():
    from ma2ml.runtime.store import space_layout
    from ma2ml.envs.spaces import HpoSpace

    class Moved(HpoSpace):  # a user's subclass is named by its own module path
        pass

    assert space_layout(HpoSpace())["class"] == "ma2ml.envs.spaces.HpoSpace"
    assert space_layout(Moved())["class"].endswith("test_compat.test_a_moved_space_class_keeps_its_name.<locals>.Moved")


def test_a_run_folder_of_an_earlier_version_resumes_and_extends(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    first = (run / "results.jsonl").read_text().splitlines()
    args = ["search", "--env", "ma2ml/AutoML-DigitsBench-v0", "--env-arg", "table_seed=0", "--learner", "reinforce",
            "--batch-size", "5", "--seed", "7", "--out", str(run)]
    assert main([*args, "--budget", "20"]) == 0  # finished: nothing to do, files rebuilt from the store
    assert (run / "results.jsonl").read_text().splitlines() == first
    assert main([*args, "--budget", "30"]) == 0  # the old checkpoint (no batch starts) extends
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(30)) and [r["batch"] for r in rows] == [i // 5 for i in range(30)]
    assert (run / "results.jsonl").read_text().splitlines()[:20] == first
    with EvalStore(run / "evals.sqlite") as store:
        assert sorted(e.index for e in store.evaluations("search")) == list(range(30))
        assert len({e.settings_hash for e in store.evaluations("search")}) == 1  # the same settings throughout
