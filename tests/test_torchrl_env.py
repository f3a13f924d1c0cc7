"""The batched TorchRL envs of the table (``ma2ml.envs.torchrl_env``): TorchRL's spec check, agreement
with the PettingZoo envs (and with TorchRL's ``PettingZooWrapper`` of them), resets, errors, the benchmark.

Part of the optional "marl" path: skipped when TorchRL is not installed (``pip install -e ".[marl]"``).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pettingzoo
import pytest
import torch

pytest.importorskip("torchrl", reason="TorchRL is not installed (pip install -e '.[marl]')")

from torchrl.envs.libs.pettingzoo import PettingZooWrapper  # noqa: E402
from torchrl.envs.utils import MarlGroupMapType, check_env_specs  # noqa: E402

import ma2ml.envs  # noqa: E402
from ma2ml.envs.automl_v0 import parallel_env  # noqa: E402
from ma2ml.bench.synthetic import SyntheticEvaluator  # noqa: E402
from ma2ml.bench.table import TableEvaluator  # noqa: E402
from ma2ml.envs.torchrl_env import table_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def legal(td: object, generator: torch.Generator) -> object:
    mask = td.get(("agents", "action_mask"))
    td.set(("agents", "action"), (torch.rand(mask.shape[:-1], generator=generator) * mask.sum(-1)).long())
    return td


@pytest.mark.parametrize("view", ["token", "joint"])
@pytest.mark.parametrize("table_seed", [0, "random"])
def test_check_env_specs(view, table_seed):
    env = table_env(5, view=view, table_seed=table_seed, seed=0)
    check_env_specs(env, seed=0)
    assert env.batch_size == torch.Size([5])


def _signature(spec, batch: int) -> dict:
    """Key -> (shape without the batch dimension, dtype) of every leaf of a spec."""
    return {k: (tuple(v.shape[batch:]), v.dtype) for k, v in spec.items(True, True)}


@pytest.mark.parametrize("view", ["token", "joint"])
def test_specs_mirror_the_pettingzoo_wrapper(view):
    batched = table_env(3, view=view, table_seed=0)
    if view == "token":
        wrapped = PettingZooWrapper(pettingzoo.make("parallel", "ma2ml/TokenAutoML-DigitsBench-v0", table_seed=0),
                                    group_map=MarlGroupMapType.ALL_IN_ONE_GROUP, categorical_actions=True,
                                    return_state=True)
    else:
        wrapped = PettingZooWrapper(pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=0),
                                    categorical_actions=True)
    for name in ("full_observation_spec", "full_action_spec", "full_reward_spec", "full_done_spec"):
        assert _signature(getattr(batched, name), 1) == _signature(getattr(wrapped, name), 0), name


@pytest.mark.parametrize("observe", ["own", "all"])
def test_token_view_agrees_with_the_pettingzoo_env(observe):
    env, g = table_env(16, view="token", table_seed=0, observe=observe, seed=0), torch.Generator().manual_seed(0)
    data = env.rollout(env.layout.steps, lambda td: legal(td, g))
    assert data[:, -1]["next", "done"].all() and not data[:, :-1]["next", "done"].any()
    pz = pettingzoo.make("parallel", "ma2ml/TokenAutoML-DigitsBench-v0", table_seed=0, observe=observe)
    agents = pz.possible_agents
    for row in range(16):
        obs, _ = pz.reset(seed=row)
        for t in range(env.layout.steps):
            step = data[row, t]
            for i, a in enumerate(agents):
                np.testing.assert_array_equal(step["agents", "observation", "observation"][i].numpy(),
                                              obs[a]["observation"])
                np.testing.assert_array_equal(step["agents", "action_mask"][i].numpy(), obs[a]["action_mask"] == 1)
            np.testing.assert_allclose(step["state"].numpy(), pz.state())
            obs, rew, *_ = pz.step({a: int(step["agents", "action"][i]) for i, a in enumerate(agents)})
            assert step["next", "agents", "reward"][:, 0].tolist() == pytest.approx([rew[a] for a in agents])
    assert env.tokens().shape == (16, 8)


def test_joint_view_agrees_with_the_table():
    env = table_env(64, view="joint", table_seed=2, seed=0)
    data = env.rand_step(env.reset())
    pz = pettingzoo.make("parallel", "ma2ml/AutoML-DigitsBench-v0", table_seed=2)
    pz.reset(seed=0)
    for row in range(64):
        actions = {a: data[a, "action"][row, 0].numpy() for a in pz.possible_agents}
        _, rew, *_ = pz.step(actions)
        pz.reset()
        for a in pz.possible_agents:
            assert float(data["next", a, "reward"][row, 0, 0]) == pytest.approx(rew[a])
    assert data["next", "done"].all()


def test_random_replicates_are_seeded_and_stored_ones():
    table = table_env(1, view="joint", table_seed="random").rewards
    noisy = int(torch.nonzero(table.replicates == 3)[0, 0])
    stored = set(table.values[noisy].tolist())
    assert len(stored) > 1  # the 3-seed subset answers noisily
    tokens = TableEvaluator().layout.tokens_at(noisy)

    def rewards(seed):  # 256 games of that one pipeline
        env = table_env(256, view="joint", table_seed="random", seed=seed)
        td = env.reset()
        for a, t in tokens.items():
            td.set((a, "action"), torch.as_tensor(t).expand(256, 1, -1))
        return env.step(td)["next", "aug", "reward"].flatten()
    first, again, other = rewards(0), rewards(0), rewards(1)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert set(first.tolist()) == stored


def test_auto_reset_and_partial_reset():
    env, g = table_env(4, view="token", table_seed=0, seed=0), torch.Generator().manual_seed(0)
    L = env.layout.steps
    data = env.rollout(3 * L, lambda td: legal(td, g), break_when_any_done=False)
    done = data["next", "done"][..., 0]
    assert done[:, L - 1::L].all() and done.sum() == 4 * 3
    env.reset()
    td = env.step(legal(env.reset(), g))["next"]
    reset = env.reset(td.set("_reset", torch.tensor([[True], [False], [False], [True]])))
    steps = reset["agents", "observation", "observation"][:, 0, 6:6 + L]
    assert steps.argmax(-1).tolist() == [0, 1, 1, 0]
    assert (env.tokens()[[0, 3]] == -1).all() and (env.tokens()[[1, 2], 0] >= 0).all()


def test_errors():
    env = table_env(2, view="token", table_seed=0)
    td = env.reset()
    td.set(("agents", "action"), torch.tensor([[0, 0, 3], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"env 0: agent 'hpo': token 0 \(lr\) = 3 is out of range; valid values "
                                         r"are 0..1"):
        env.step(td)
    joint = table_env(2, view="joint", table_seed=0)
    td = joint.rand_action(joint.reset())
    td.set(("nas", "action"), torch.full((2, 1, 4), 3))
    with pytest.raises(ValueError, match=r"env 0: agent 'nas': token 0 = 3 is out of range; valid values are 0..2"):
        joint.step(td)
    with pytest.raises(ValueError, match=r"view must be one of \['token', 'joint'\]"):
        table_env(2, view="aec")
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        table_env(0)
    with pytest.raises(ValueError, match="needs a table env"):
        table_env(2, env=parallel_env(evaluator=SyntheticEvaluator()))
    with pytest.raises(ValueError, match="already built"):
        table_env(2, env=ma2ml.envs.make_parallel("ma2ml/AutoML-DigitsBench-v0"), table_seed=0)


def test_benchmark_quick():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_torchrl_env.py"), "--quick"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-1].startswith("headline: ") and "agent-steps/s batched token view" in lines[-1]
    assert any(line.startswith("ratios: ") for line in lines)


def _marl_doc_snippets() -> list[tuple[str, str]]:
    from test_docs import snippets  # the one parser of the docs' snippets (tests/test_docs.py)

    return [(name, code) for name, code, reason in snippets()
            if name.startswith("docs/marl.md") and reason is not None and "needs TorchRL" in reason]


@pytest.mark.slow
@pytest.mark.parametrize("name, code", _marl_doc_snippets(), ids=[n for n, _ in _marl_doc_snippets()])
def test_marl_doc_snippets_that_need_torchrl(tmp_path, name, code):
    """test_docs.py skips these (TorchRL is an optional extra); here they run verbatim when it is installed."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"


def test_the_marl_doc_marks_its_torchrl_snippets():
    assert len(_marl_doc_snippets()) == 2
