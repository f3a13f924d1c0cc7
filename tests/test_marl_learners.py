"""MAPPO and IPPO (``ma2ml.baselines.torchrl_marl``): ``ma2ml search`` on the table, determinism,
resume, the no-repeat protocol, and one clear error without TorchRL.

The optional "marl" path: tests that need TorchRL skip when it is not installed
(``pip install -e ".[marl]"``); the missing-TorchRL error is tested either way.
"""
from __future__ import annotations

import importlib
import io
import json
import sys

import numpy as np
import pytest
import torch

import ma2ml.envs
from ma2ml.learners import learner_config, learner_names, make_learner
from ma2ml.cli import main


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


needs_torchrl = pytest.mark.skipif(not _importable("torchrl"),
                                   reason="TorchRL is not installed (pip install -e '.[marl]')")
TABLE = "ma2ml/AutoML-DigitsBench-v0"


def table_env():
    env = ma2ml.envs.make_parallel(TABLE, table_seed=0)
    env.reset(seed=0)
    return env


def rows(batches) -> list[list[int]]:
    return [np.concatenate([a[k] for k in ("aug", "nas", "hpo")]).tolist() for b in batches for a in b.actions]


def test_registered_with_documented_configs():
    assert {"mappo", "ippo"} <= set(learner_names())
    assert learner_config("mappo").centralized_critic and not learner_config("ippo").centralized_critic
    with pytest.raises(ValueError, match=r"MAPPOConfig.observe = 'mine' is invalid; valid values are 'own' or 'all'"):
        learner_config("mappo", observe="mine")
    with pytest.raises(ValueError, match=r"IPPOConfig.gamma = 2 is invalid"):
        learner_config("ippo", gamma=2)


@needs_torchrl
@pytest.mark.parametrize("name", ["mappo", "ippo"])
def test_search_through_the_cli(tmp_path, name):
    def search(out, budget):
        return main(["search", "--env", TABLE, "--env-arg", "table_seed=0", "--learner", name, "--budget", str(budget),
                     "--batch-size", "4", "--seed", "3", "--out", str(out)])

    def tokens(out):
        return [json.loads(line)["tokens"] for line in (out / "results.jsonl").read_text().splitlines()]

    out = tmp_path / name
    assert search(out, 12) == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == 12 and {r["batch"] for r in results} == {0, 1, 2}
    assert len({json.dumps(r["tokens"], sort_keys=True) for r in results}) == 12  # the no-repeat protocol
    best = json.loads((out / "best.json").read_text())
    assert best["reward"] == max(r["reward"] for r in results) and best["evaluations"] == 12
    # extending the finished run to 20 evaluations (a resume from its checkpoint) equals a run of 20 from scratch
    assert search(out, 20) == 0 and search(tmp_path / "fresh", 20) == 0
    assert tokens(out) == tokens(tmp_path / "fresh")


@needs_torchrl
@pytest.mark.parametrize("name", ["mappo", "ippo", "qmix", "vdn"])
def test_seeded_deterministic_and_global_rng_untouched(name):
    """Every TorchRL learner (MAPPO/IPPO here, QMIX/VDN in tests/test_qmix.py) is seeded and leaves torch's global
    RNG alone."""
    state = torch.get_rng_state()
    first = rows(make_learner(name, table_env(), seed=5).learn(table_env(), 16, 4))
    again = rows(make_learner(name, table_env(), seed=5).learn(table_env(), 16, 4))
    other = rows(make_learner(name, table_env(), seed=6).learn(table_env(), 16, 4))
    assert first == again and first != other
    assert torch.equal(torch.get_rng_state(), state)


@needs_torchrl
def test_resume_is_identical():
    def checkpoint(learner):
        buffer = io.BytesIO()
        torch.save(learner.state_dict(), buffer)
        buffer.seek(0)
        return torch.load(buffer, weights_only=True)  # what `ma2ml search` does

    config = {"update_every": 12, "minibatches": 2}  # the checkpoint falls between updates: episodes pending
    whole = make_learner("mappo", table_env(), seed=1, **config)
    expected = rows(whole.learn(table_env(), 20, 4))
    first = make_learner("mappo", table_env(), seed=1, **config)
    head = rows(first.learn(table_env(), 8, 4))
    assert first._pending
    resumed = make_learner("mappo", table_env(), seed=1, **config)
    resumed.load_state_dict(checkpoint(first))
    assert head + rows(resumed.learn(table_env(), 20, 4)) == expected
    for a, b in zip(whole.loss.parameters(), resumed.loss.parameters(), strict=True):
        assert torch.equal(a, b)


@needs_torchrl
def test_token_episodes_and_foreign_rows():
    env = table_env()
    learner = make_learner("ippo", env, seed=0, observe="all")
    asked = learner.ask(5)
    for actions in asked:
        assert all(env.action_space(a).contains(actions[a]) for a in env.possible_agents)
    joint = learner.joint(asked)
    data = learner.episodes(joint, np.arange(5) / 10)
    assert data.batch_size == (5, 4)  # five pipelines, L = 4 token steps each
    reward = data["next", "agents", "reward"][..., 0]
    assert torch.allclose(reward[:, -1], torch.arange(5, dtype=torch.float32)[:, None].expand(5, 3) / 10)
    assert (reward[:, :-1] == 0).all()
    assert data["agents", "action"][:, 0, 0].tolist() == joint[:, 0].tolist()  # aug's first token at step 0
    assert (data["agents", "action"][:, 2:, 0] == 0).all()  # aug (2 tokens) is a no-op afterwards
    foreign = learner.layout.all_rows()[[0, 1, 2]]
    learner.tell(learner.split(foreign), [0.1, 0.2, 0.3])  # rows it did not propose: learnt from as if sampled
    assert learner.num_evaluations == 3


@needs_torchrl
@pytest.mark.parametrize("name", ["mappo", "ippo"])
def test_learns_on_the_table(name):
    """With its (tuned) defaults, the last 40 of 160 proposals average well above a uniform random pipeline (the
    table's mean, 0.54) and above the first 40. (MAPPO's tuned learning rate, 3e-2, learns within the first 40
    already, so the margin is to the table's mean: 0.675 against 0.54 at seed 0.)"""
    from ma2ml.envs.torchrl_env import RewardTable

    env = table_env()
    random_mean = float(RewardTable.of(env).values.mean())
    learner = make_learner(name, env, seed=0)
    rewards = [r for b in learner.learn(env, 160, 10, no_repeat=False) for r in b.rewards]
    assert np.mean(rewards[-40:]) > random_mean + 0.08, (np.mean(rewards[-40:]), random_mean)
    assert np.mean(rewards[-40:]) > np.mean(rewards[:40])


def test_one_clear_error_without_torchrl(monkeypatch, tmp_path, capsys):
    from ma2ml.baselines.torchrl_marl import TorchRLMissing

    monkeypatch.setitem(sys.modules, "torchrl", None)  # what `import torchrl` sees when it is not installed
    with pytest.raises(TorchRLMissing, match=r'need TorchRL \(torchrl>=0.11\): pip install -e "\.\[marl\]"'):
        make_learner("mappo", table_env())
    code = main(["search", "--env", TABLE, "--learner", "ippo", "--budget", "2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install -e" in err[0]
