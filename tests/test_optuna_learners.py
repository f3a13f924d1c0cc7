"""The Optuna learners (``tpe``; ``gp`` by its class path): seeds, the no-repeat protocol, checkpoints, the CLI."""
from __future__ import annotations

import io
import json
import logging
import sys

import numpy as np
import pettingzoo
import pytest
import torch

import ma2ml.envs  # noqa: F401  (registers the envs)
from ma2ml.learners import make_learner
from ma2ml.baselines.optuna_samplers import OptunaLearner, TPEConfig
from ma2ml.cli import main
from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.bench.synthetic import SyntheticEvaluator, small_spaces

optuna = pytest.importorskip("optuna")

GP = "ma2ml.baselines.optuna_samplers:GP"
TABLE = ["--env", "ma2ml/AutoML-DigitsBench-v0", "--env-arg", "table_seed=0"]


def table_env(seed: int = 0) -> object:
    env = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0)
    env.reset(seed=seed)
    return env


def trajectory(batches: list) -> list:
    return [([{a: t.tolist() for a, t in x.items()} for x in b.actions], b.rewards) for b in batches]


def run(name: str, seed: int, budget: int, batch_size: int, **config) -> tuple[object, list]:
    env = table_env(seed)
    learner = make_learner(name, env, seed=seed, **config)
    return learner, trajectory(learner.learn(env, budget, batch_size))


def values_by_pipeline(study) -> dict[tuple, set[float]]:
    seen: dict[tuple, set[float]] = {}
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            seen.setdefault(tuple(trial.params.values()), set()).add(trial.value)
    return seen


def test_tpe_same_seed_same_run_and_distinct_pipelines():
    learner, first = run("tpe", 3, 120, 10)
    assert run("tpe", 3, 120, 10)[1] == first
    assert run("tpe", 4, 120, 10)[1] != first
    rows = {json.dumps(x) for actions, _ in first for x in actions}
    assert len(rows) == 120 == learner.num_distinct == learner.num_evaluations
    # the repeats TPE proposed were told their known reward, free of charge: one value per pipeline
    complete = [t for t in learner.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) > 120 and all(len(v) == 1 for v in values_by_pipeline(learner.study).values())


def test_tpe_config_reaches_the_sampler():
    env = table_env()
    sampler = make_learner("tpe", env, n_startup_trials=5, multivariate=False, constant_liar=False).study.sampler
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert (sampler._n_startup_trials, sampler._multivariate, sampler._constant_liar) == (5, False, False)
    with pytest.raises(ValueError, match="TPEConfig.n_ei_candidates = 0 is invalid"):
        make_learner("tpe", env, n_ei_candidates=0)


class Stuck(OptunaLearner):
    """A sampler that proposes one pipeline only (every token 0): exercises each repeat rule."""

    config_class = TPEConfig

    def make_sampler(self, optuna):
        return optuna.samplers.PartialFixedSampler({name: 0 for name in self.names},
                                                   optuna.samplers.RandomSampler(seed=self.seed))


@pytest.mark.filterwarnings("ignore:PartialFixedSampler is experimental")
def test_repeats_are_told_their_reward_pending_ones_fail_then_unseen_pipelines_fill_in():
    from ma2ml.agents.base import RESAMPLE_ROUNDS

    env = table_env()
    learner = Stuck(env, seed=0)
    zero = [0] * len(learner.joint_nvec)
    rows = learner.joint(learner.ask(3))
    assert rows[0].tolist() == zero and len({r.tobytes() for r in rows}) == 3
    states = [t.state for t in learner.study.trials]
    fail = optuna.trial.TrialState.FAIL
    assert states.count(fail) == 2 * RESAMPLE_ROUNDS  # the 2nd and 3rd proposals repeat the 1st, pending
    learner.tell(learner.split(rows), [0.5, 0.25, 0.125])
    rows = learner.joint(learner.ask(2))
    assert not any(r.tolist() == zero for r in rows)
    repeats = [t for t in learner.study.trials if t.state == optuna.trial.TrialState.COMPLETE
               and list(t.params.values()) == zero]
    assert len(repeats) == 1 + 2 * RESAMPLE_ROUNDS and {t.value for t in repeats} == {0.5}
    assert learner.num_evaluations == 3  # answering repeats from memory charges nothing
    learner.no_repeat = False
    assert [r.tolist() for r in learner.joint(learner.ask(2))] == [zero, zero]


def test_every_pipeline_seen_then_repeats_are_allowed():
    game = SyntheticEvaluator(spaces=small_spaces(tokens=1, size=2), game=0)  # 3 agents x 1 token x 2 = 8
    env = parallel_env(evaluator=game)
    env.reset(seed=0)
    learner = make_learner("tpe", env, seed=0, n_startup_trials=2)
    batches = learner.learn(env, 12, 4)
    rows = [tuple(r) for b in batches for r in learner.joint(b.actions).tolist()]
    assert len(set(rows[:8])) == 8 and len(rows) == 12


@pytest.mark.parametrize("name, config", [("tpe", {}), (GP, {"n_startup_trials": 4})])
def test_resume_through_a_weights_only_checkpoint_equals_an_unsplit_run(name, config):
    budget, half, batch = (60, 30, 10) if name == "tpe" else (12, 8, 4)
    _, straight = run(name, 5, budget, batch, **config)
    env = table_env(5)
    first = make_learner(name, env, seed=5, **config)
    head = trajectory(first.learn(env, half, batch))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    resumed = make_learner(name, env, seed=5, **config)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert [t.params for t in resumed.study.trials] == [t.params for t in first.study.trials]
    assert head + trajectory(resumed.learn(env, budget, batch)) == straight
    with pytest.raises(ValueError, match="into a fresh learner"):
        resumed.load_state_dict(first.state_dict())


def test_replaying_another_seed_is_refused():
    env = table_env()
    learner = make_learner("tpe", env, seed=1)
    learner.learn(env, 10, 5)
    state = learner.state_dict()
    state["log"][0] = ("ask", [(t + 1) % n for t, n in zip(state["log"][0][1], learner.joint_nvec, strict=True)])
    with pytest.raises(RuntimeError, match="another seed or Optuna version"):
        make_learner("tpe", env, seed=1).load_state_dict(state)


def test_optuna_logs_and_global_state_are_left_alone():
    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append
    logger = logging.getLogger("optuna")
    before = logger.level
    logger.setLevel(logging.INFO)  # Optuna's default: a line per study created and per trial finished
    logger.addHandler(handler)
    try:
        torch.manual_seed(1)
        np.random.seed(1)
        expected = torch.rand(2), np.random.rand(2)
        torch.manual_seed(1)
        np.random.seed(1)
        run("tpe", 0, 20, 10)
        run(GP, 0, 8, 4, n_startup_trials=4)
        assert torch.equal(torch.rand(2), expected[0]) and np.array_equal(np.random.rand(2), expected[1])
        assert logged == [] and logger.level == logging.INFO
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def test_without_optuna_one_error_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails
    with pytest.raises(ValueError, match=r'needs Optuna, an optional extra .*pip install -e "\.\[optuna\]"'):
        make_learner("tpe", table_env())
    out = tmp_path / "run"
    assert main(["search", *TABLE, "--learner", "tpe", "--budget", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[optuna]"' in err and "Traceback" not in err and not out.exists()


def test_tpe_in_search_resumes_and_extends_like_one_run(tmp_path):
    def results(out):
        return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]

    args = [*TABLE, "--learner", "tpe", "--batch-size", "5", "--seed", "2"]
    assert main(["search", *args, "--budget", "20", "--out", str(tmp_path / "a")]) == 0
    assert main(["search", *args, "--budget", "30", "--out", str(tmp_path / "a")]) == 0  # resumed from checkpoint.pt
    assert main(["search", *args, "--budget", "30", "--out", str(tmp_path / "b")]) == 0
    extended, straight = results(tmp_path / "a"), results(tmp_path / "b")
    assert extended == straight and len({json.dumps(r["tokens"]) for r in straight}) == 30
