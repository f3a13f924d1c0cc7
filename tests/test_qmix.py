"""QMIX and VDN (``ma2ml.baselines.torchrl_qmix``): TorchRL's mixers, valid distinct masked proposals,
determinism, resume, learning on the table, and one clear error without TorchRL.

The optional "marl" path: the tests that need TorchRL skip when it is not installed
(``pip install -e ".[marl]"``); the missing-TorchRL error is tested either way.
"""
from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import torch

import ma2ml.envs
from ma2ml.cli import main
from ma2ml.learners import learner_config, learner_names, make_learner

TABLE = "ma2ml/AutoML-DigitsBench-v0"
NAMES = ["qmix", "vdn"]


def table_env():
    env = ma2ml.envs.make_parallel(TABLE, table_seed=0)
    env.reset(seed=0)
    return env


def rows(batches) -> list[list[int]]:
    return [np.concatenate([a[k] for k in ("aug", "nas", "hpo")]).tolist() for b in batches for a in b.actions]


def checkpoint(learner):
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # what `ma2ml search` does


def test_registered_with_documented_configs():
    assert {"qmix", "vdn"} <= set(learner_names())
    assert learner_config("qmix").mixer == "qmix" and learner_config("vdn").mixer == "vdn"
    with pytest.raises(ValueError, match=r"QMixConfig.epsilon_end = 0.5 is invalid; valid values are at most "
                                         r"epsilon_start = 0.2"):
        learner_config("qmix", epsilon_start=0.2, epsilon_end=0.5)
    with pytest.raises(ValueError, match=r"VDNConfig.tau = 0.9 is invalid"):
        learner_config("vdn", tau=0.9)


def test_one_clear_error_without_torchrl(monkeypatch, tmp_path, capsys):
    from ma2ml.baselines.torchrl_marl import TorchRLMissing

    monkeypatch.setitem(sys.modules, "torchrl", None)  # what `import torchrl` sees when it is not installed
    hint = r'QMIX and VDN need TorchRL \(torchrl>=0.11\): pip install -e "\.\[marl\]"'
    with pytest.raises(TorchRLMissing, match=hint):
        make_learner("qmix", table_env())
    code = main(["search", "--env", TABLE, "--learner", "vdn", "--budget", "2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install -e" in err[0]


@pytest.fixture
def torchrl():
    """TorchRL, or the test skips (``pip install -e ".[marl]"``)."""
    return pytest.importorskip("torchrl")


needs_torchrl = pytest.mark.usefixtures("torchrl")


@needs_torchrl
@pytest.mark.parametrize("name, mixer", [("qmix", "QMixer"), ("vdn", "VDNMixer")])
def test_the_mixers_and_loss_are_torchrl_s(name, mixer):
    import torchrl.modules
    from torchrl.objectives import QMixerLoss, SoftUpdate

    learner = make_learner(name, table_env(), seed=0)
    assert type(learner.mixer.module) is getattr(torchrl.modules, mixer)
    assert isinstance(learner.loss, QMixerLoss) and isinstance(learner.target_update, SoftUpdate)


@needs_torchrl
@pytest.mark.parametrize("name", NAMES)
def test_ask_returns_valid_distinct_pipelines(name):
    env = table_env()
    learner = make_learner(name, env, seed=0)
    asked = learner.ask(16)
    assert len(asked) == 16
    for actions in asked:
        assert set(actions) == set(env.possible_agents)
        assert all(env.action_space(a).contains(actions[a]) for a in env.possible_agents)
    assert len({learner.row_key(row) for row in learner.joint(asked)}) == 16


@needs_torchrl
def test_masked_actions_are_never_chosen():
    """Greedy and exploring alike: even with the largest Q on the last action, which most tokens mask."""
    learner = make_learner("qmix", table_env(), seed=0)
    with torch.no_grad():
        list(learner.Q.parameters())[-1][..., -1] = 1e6  # the last action (allowed for aug's tokens only) looks best
    for eps in (0.0, 0.5, 1.0):
        learner.explore.eps.fill_(eps)
        data, tokens = learner._rollout(learner.policy, 64)
        chosen = data["agents", "action_mask"].gather(-1, data["agents", "action"].unsqueeze(-1))
        assert chosen.all()
        assert ((tokens >= 0) & (tokens < torch.tensor(learner.joint_nvec.tolist()))).all()
        if eps == 0:
            assert (tokens[:, :2] == 3).all()  # greedy takes the inflated action wherever it is allowed
    assert (data["agents", "action_mask"].sum(-1) < learner.token_layout.actions).any()  # the mask bites


@needs_torchrl
@pytest.mark.parametrize("name", NAMES)
def test_resume_is_identical(name):
    whole = make_learner(name, table_env(), seed=1, batch_size=16, updates_per_batch=4)
    expected = rows(whole.learn(table_env(), 30, 10))
    first = make_learner(name, table_env(), seed=1, batch_size=16, updates_per_batch=4)
    head = rows(first.learn(table_env(), 20, 10))
    resumed = make_learner(name, table_env(), seed=1, batch_size=16, updates_per_batch=4)
    resumed.load_state_dict(checkpoint(first))
    assert len(resumed.replay) == 20 * resumed.token_layout.steps and torch.equal(resumed.explore.eps,
                                                                                   first.explore.eps)
    assert head + rows(resumed.learn(table_env(), 30, 10)) == expected
    assert torch.equal(whole.explore.eps, resumed.explore.eps)
    for a, b in zip(whole.loss.state_dict().values(), resumed.loss.state_dict().values(), strict=True):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b  # networks and targets (and, in
        # TorchRL 0.11, BenchMARL's pin, a few shapes)


@needs_torchrl
def test_search_through_the_cli_resumes(tmp_path):
    def search(out, budget):
        return main(["search", "--env", TABLE, "--env-arg", "table_seed=0", "--learner", "qmix", "--budget",
                     str(budget), "--batch-size", "4", "--seed", "3", "--out", str(out)])

    def tokens(out):
        return [json.loads(line)["tokens"] for line in (out / "results.jsonl").read_text().splitlines()]

    assert search(tmp_path / "run", 8) == 0 and len(tokens(tmp_path / "run")) == 8
    assert search(tmp_path / "run", 16) == 0 and search(tmp_path / "fresh", 16) == 0
    assert tokens(tmp_path / "run") == tokens(tmp_path / "fresh")


@needs_torchrl
@pytest.mark.parametrize("name", NAMES)
def test_learns_on_the_table(name):
    """After 120 evaluations the greedy joint action beats 85% of the table's pipelines and the last 40
    proposals average well above a uniform random pipeline (the table's mean). Not learning fails both:
    with ``learning_rate=1e-9`` (seeds 0-4) the greedy pipeline beats 0-78% of the table and the last 40
    average 0.31-0.61, against a mean of 0.54; learning, they beat 90-99.5% and average 0.64-0.81."""
    from ma2ml.envs.torchrl_env import RewardTable

    env = table_env()
    table = RewardTable.of(env)
    random_mean = float(table.values.mean())
    # the schedule these bounds were measured with: QMIX's tuned epsilon_episodes (250) still explores at 120
    learner = make_learner(name, env, seed=0, epsilon_episodes=100)
    probe = learner.episodes(learner.layout.all_rows()[:32], np.zeros(32))
    with torch.no_grad():
        before = learner.Q(probe.clone())["agents", "action_value"]
    rewards = [r for b in learner.learn(env, 120, 10) for r in b.rewards]
    with torch.no_grad():
        after = learner.Q(probe.clone())["agents", "action_value"]
    assert not torch.allclose(before, after)
    assert max(rewards) > random_mean + 0.3
    assert np.mean(rewards[-40:]) > random_mean + 0.08, (np.mean(rewards[-40:]), random_mean)
    learner.explore.eps.fill_(0.0)
    _, greedy = learner._rollout(learner.policy, 1)
    assert float((table.values < table(greedy, None)).float().mean()) > 0.85
