"""Re-evaluation under seed noise (issue 25): on a table that draws among stored trainings, evaluating a
pipeline again is allowed (``--allow-repeats``, or a learner's re-evaluations), charged one evaluation, and
answers with another stored training (without replacement until the pipeline's trainings run out, then
with); the learners' own proposals keep the no-repeat protocol by default on every table; a resumed run
draws exactly as an uninterrupted one."""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import numpy as np
import pettingzoo

import ma2ml.envs  # noqa: F401  (registers the ids)
from ma2ml.agents.base import Learner
from ma2ml.bench.hard.tables import HARD_BENCH, HARD_TABLE_PATH
from ma2ml.bench.table import load_table
from ma2ml.experiment import Experiment

HARD = "ma2ml/AutoML-DigitsHard-v0"


def _most_replicated() -> list[int]:
    table = load_table(HARD_TABLE_PATH, HARD_BENCH)
    return [int(i) for i in np.argsort(-table.replicates, kind="stable")[:3]]


class Repeater(Learner):
    """Asks three well-replicated pipelines of the hard table over and over (a test learner)."""

    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        rows = self.layout.all_rows()[_most_replicated()] if self.space_size < 10**6 else None
        return self.split(np.stack([rows[(self.num_asked + k) % 3] for k in range(n)]))

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence | None) -> None:
        return None


def test_a_repeat_answers_with_another_stored_training_until_they_run_out():
    table = load_table(HARD_TABLE_PATH, HARD_BENCH)
    i = _most_replicated()[0]
    reps = int(table.replicates[i])
    assert reps >= 6
    env = pettingzoo.make("parallel", HARD)
    env.reset(seed=4)
    records = env.evaluate_batch([env.evaluator.layout.tokens_at(i)] * (reps + 3))
    seeds = [r.seed for r in records]
    assert sorted(seeds[:reps]) == sorted(table.seed[i, :reps].tolist())  # every stored training once
    assert set(seeds[reps:]) <= set(seeds[:reps])  # then with replacement
    env.reset(seed=4)  # a seeded reset starts a new run: the same draws again
    assert [r.seed for r in env.evaluate_batch([env.evaluator.layout.tokens_at(i)] * (reps + 3))] == seeds
    fixed = pettingzoo.make("parallel", HARD, table_seed=0)
    fixed.reset(seed=4)
    assert {r.seed for r in fixed.evaluate_batch([fixed.evaluator.layout.tokens_at(i)] * 4)} == {table.seed[i, 0]}


def test_the_protocol_is_no_repeat_by_default_and_is_recorded(tmp_path):
    noisy = Experiment(out=tmp_path / "noisy", env=HARD, learner="random", budget=10, batch_size=5)
    noisy.run(progress=False)
    fixed = Experiment(out=tmp_path / "fixed", env=HARD, env_args={"table_seed": 0}, learner="random", budget=10,
                       batch_size=5)
    fixed.run(progress=False)
    assert json.loads((tmp_path / "noisy" / "run.json").read_text())["no_repeat"] is True
    assert json.loads((tmp_path / "fixed" / "run.json").read_text())["no_repeat"] is True
    allowed = Experiment(out=tmp_path / "allowed", env=HARD, learner="random", budget=10, batch_size=5,
                         no_repeat=False)
    allowed.run(progress=False)
    assert json.loads((tmp_path / "allowed" / "run.json").read_text())["no_repeat"] is False


def _stored(folder) -> list[tuple[int, str, int]]:
    with sqlite3.connect(folder / "evals.sqlite") as conn:
        rows = conn.execute("SELECT eval_index, pipeline_key, seed FROM evaluations ORDER BY eval_index").fetchall()
    conn.close()
    return rows


def test_a_resumed_run_draws_exactly_as_an_uninterrupted_one(tmp_path):
    learner = f"{__name__}:Repeater"
    run = dict(env=HARD, learner=learner, batch_size=6, seed=9, no_repeat=False)
    Experiment(out=tmp_path / "whole", budget=30, **run).run(progress=False)
    Experiment(out=tmp_path / "split", budget=12, **run).run(progress=False)
    Experiment(out=tmp_path / "split", budget=30, **run).run(progress=False)
    stored = _stored(tmp_path / "whole")
    assert len(stored) == 30 and len({key for _, key, _ in stored}) == 3  # 10 evaluations of each, all charged
    assert len({seed for _, _, seed in stored}) > 3  # repeats answered with other trainings
    assert _stored(tmp_path / "split") == stored
