"""MAPPO and IPPO as ma2ml learners, built from TorchRL's multi-agent components, on the token view.

The standard MARL algorithms of BenchMARL and EPyMARL, assembled from TorchRL's own parts
the way its multi-agent PPO tutorial and BenchMARL do: per-agent policies are a
``MultiAgentMLP`` (parameters shared across agents by default; the agent one-hot in the
observation tells them apart) inside a ``ProbabilisticActor`` with a ``MaskedCategorical``
over the token view's padded actions; the critic is a ``MultiAgentMLP`` with one value per
agent; ``ClipPPOLoss`` with TorchRL's ``GAE`` estimator trains both. The two differ only in
the critic, as in BenchMARL: **MAPPO** has a centralized critic (each agent's value reads
every agent's observation), **IPPO** a decentralized one (its own observation only).

They play the token-level game of :mod:`ma2ml.envs.token_v0` (``observe="own"`` by default:
decentralized actors that see their own earlier tokens). Episodes are rolled out in the
batched TorchRL token env (:class:`ma2ml.envs.torchrl_env.TokenTableEnv`, without a
table: the reward is the evaluated pipeline's), so:

* ``ask(n)`` rolls out n token episodes with the current policy (L steps, every agent one
  masked categorical token per step) and returns their pipelines;
* ``tell`` hands back one reward per pipeline, which is the reward of the episode's last
  step (0 before); **one evaluation = one pipeline = one token episode**, as for every learner;
* after every ``update_every`` told episodes (default: each told batch), PPO runs ``epochs``
  passes of ``minibatches`` minibatches over them (GAE with ``gamma``/``lmbda`` first).

Told episodes are rebuilt from their tokens (observations replayed in the token env,
behaviour log-probabilities computed by the policy at update time, which has not changed
since the asks). So a row the policy did not propose — the base learner's no-repeat
replacement of an already evaluated pipeline, or an action told from elsewhere — enters
PPO as if the policy had sampled it: importance ratios start at 1 for it. ``_ask`` has no
side effect but drawing from the learner's torch RNG, so the base class's no-repeat
protocol may call it again to replace repeats: these learners leave repeats to the base
(``handles_repeats`` stays False; a replacement is resampled by the policy first, and only
after :data:`~ma2ml.agents.base.RESAMPLE_ROUNDS` rounds drawn uniformly).

Seeded and deterministic on CPU: the networks are built under a forked, seeded torch RNG,
and all sampling (actions, minibatch order) runs on the learner's own saved torch RNG state
inside ``torch.random.fork_rng``, so no global state is read or changed. Checkpoints hold
the loss module (actor and critic), the optimizer, the RNG state and the episodes not yet
learnt from: a resumed run continues identically (tested). TorchRL is an optional extra
(``pip install -e ".[marl]"``); without it, making these learners is one clear error.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.fields import Annotated, Length, Literal, Range
from ma2ml.agents.base import Learner, LearnerConfig
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import EvalRecord

TORCHRL_HINT = '{} need TorchRL (torchrl>=0.11): pip install -e ".[marl]"'
"""What to do when TorchRL is missing (``{}``: the learners that need it)."""


class TorchRLMissing(UserError):
    """TorchRL is not installed: the message says what to install."""


def require_torchrl(learners: str = "MAPPO and IPPO") -> None:
    """One :class:`TorchRLMissing` naming the fix when TorchRL is not importable."""
    try:
        import tensordict  # noqa: F401
        import torchrl  # noqa: F401
    except ImportError as exc:
        raise TorchRLMissing(f"{TORCHRL_HINT.format(learners)} ({exc})") from None


@dataclass
class MarlPPOConfig(LearnerConfig):
    """Settings of the TorchRL PPO learners (MAPPO and IPPO differ by ``centralized_critic``)."""

    centralized_critic: bool = True
    """True: MAPPO (each agent's value reads all agents' observations); False: IPPO."""
    observe: Literal["own", "all"] = "own"
    """The token view's observations: ``"own"`` (an agent sees its own earlier tokens) or ``"all"``."""
    hidden: Annotated[tuple[int, ...], Range(1, 1024), Length(1, 16)] = (64, 64)
    """Hidden layers of the actor and critic ``MultiAgentMLP`` s (tanh)."""
    share_params: bool = True
    """One actor network for all agents (told apart by the agent one-hot); False: one per agent."""
    learning_rate: Annotated[float, Range(0, 10, low_open=True)] = 3e-3
    """Adam learning rate of actor and critic."""
    clip_epsilon: Annotated[float, Range(0, 10, low_open=True)] = 0.2
    """PPO's ratio clipping."""
    entropy_coef: Annotated[float, Range(0, 100)] = 0.01
    """Entropy bonus."""
    critic_coef: Annotated[float, Range(0, 100)] = 1.0
    """Weight of the critic's loss."""
    gamma: Annotated[float, Range(0, 1)] = 1.0
    """Discount over the token steps (1: the one terminal reward counts fully at every step)."""
    lmbda: Annotated[float, Range(0, 1)] = 0.95
    """GAE's lambda."""
    epochs: Annotated[int, Range(1, 1000)] = 4
    """PPO passes over the episodes of an update."""
    minibatches: Annotated[int, Range(1, 10_000)] = 1
    """Minibatches per pass (over the episodes' agent-steps)."""
    max_grad_norm: Annotated[float, Range(0, 1e6, low_open=True)] = 1.0
    """Gradient-norm clipping."""
    normalize_advantage: bool = True
    """Standardize advantages within a minibatch, per agent."""
    update_every: Annotated[int | None, Range(1, 1_000_000)] = None
    """Told episodes per update; None: update after every told batch."""



@dataclass
class MAPPOConfig(MarlPPOConfig):
    """MAPPO: PPO with a centralized critic and decentralized actors."""

    centralized_critic: bool = True
    """MAPPO's critic is centralized."""
    learning_rate: Annotated[float, Range(0, 10, low_open=True)] = 3e-2
    """Adam learning rate of actor and critic (tuned: ``ma2ml/tuned/mappo.json``; 3e-3 before)."""


@dataclass
class IPPOConfig(MarlPPOConfig):
    """IPPO: independent PPO, every agent's critic on its own observation."""

    centralized_critic: bool = False
    """IPPO's critic is decentralized."""
    entropy_coef: Annotated[float, Range(0, 100)] = 0.0
    """Weight of the policies' entropy bonus (tuned: ``ma2ml/tuned/ippo.json``; 0.01 before)."""


OBSERVATION = ("agents", "observation", "observation")
ACTION = ("agents", "action")
LOG_PROB = ("agents", "action_log_prob")


class TokenGameLearner(Learner):
    """A learner of TorchRL components that plays the token game in the batched token env: its layout, its
    rollouts on the learner's own torch RNG, and told pipelines replayed as episodes. Subclasses build their
    networks in :meth:`build` (called under the seeded RNG) and name themselves in :attr:`needs`."""

    needs = "MAPPO and IPPO"
    """The learners named when TorchRL is missing."""

    def __init__(self, env: AutoMLEnv, config: LearnerConfig | None = None, seed: int = 0) -> None:
        require_torchrl(self.needs)
        super().__init__(env, config, seed)
        from ma2ml.envs.token_v0 import TokenLayout

        self.token_layout = TokenLayout(self.layout, len(self.state), self.config.observe)
        """The token game's schedule and observation encoding."""
        self._envs: dict[int, Any] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.build()
            self.torch_rng = torch.get_rng_state()
            """The learner's torch RNG state: every sample is drawn from it (inside ``fork_rng``)."""

    def build(self) -> None:
        raise NotImplementedError

    def _env(self, n: int) -> Any:
        """The reward-less batched token env of ``n`` games (cached per ``n``)."""
        if n not in self._envs:
            from ma2ml.envs.torchrl_env import TokenTableEnv

            self._envs[n] = TokenTableEnv(self.token_layout, self.state, n)
        return self._envs[n]

    def _rollout(self, policy: Any, n: int) -> tuple[Any, torch.Tensor]:
        """(episodes ``[n, L]``, their tokens ``(n, T)``) under ``policy``, on the learner's RNG."""
        from torchrl.envs.utils import ExplorationType, set_exploration_type

        env = self._env(n)
        with torch.random.fork_rng(devices=[]), torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            torch.set_rng_state(self.torch_rng)
            data = env.rollout(self.token_layout.steps, policy, auto_reset=True)
            self.torch_rng = torch.get_rng_state()
        return data, env.tokens()

    def replayed(self, joint: np.ndarray, rewards: np.ndarray) -> Any:
        """Told pipelines as token episodes ``[n, L]``: observations replayed in the token env, the pipeline's
        reward on the last step (0 before)."""
        lay = self.token_layout
        tokens = torch.as_tensor(np.asarray(joint, dtype=np.int64))
        column = torch.tensor(lay.column)
        steps = iter(range(lay.steps))

        def replay(td: Any) -> Any:
            t = next(steps)
            td.set(ACTION, torch.where(column[t] >= 0, tokens[:, column[t].clamp(min=0)], 0))
            return td

        data, _ = self._rollout(replay, len(tokens))
        reward = data.get(("next", "agents", "reward"))
        reward[:, -1] = torch.as_tensor(rewards, dtype=reward.dtype)[:, None, None]
        return data


class MarlPPO(TokenGameLearner):
    """MAPPO / IPPO from TorchRL components on the token view (see the module docstring)."""

    config_class = MarlPPOConfig

    def __init__(self, env: AutoMLEnv, config: MarlPPOConfig | None = None, seed: int = 0) -> None:
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        super().__init__(env, config, seed)

    def build(self) -> None:
        """The actor, critic, PPO loss and optimizer (called under a seeded torch RNG)."""
        from tensordict.nn import TensorDictModule
        from torchrl.modules import MaskedCategorical, MultiAgentMLP, ProbabilisticActor
        from torchrl.objectives import ClipPPOLoss, ValueEstimators

        c, lay = self.config, self.token_layout
        n, d = len(lay.agents), lay.observation_size
        mlp = {"depth": len(c.hidden), "num_cells": list(c.hidden), "activation_class": torch.nn.Tanh}
        actor_net = MultiAgentMLP(d, lay.actions, n, centralized=False, share_params=c.share_params, **mlp)
        self.actor = ProbabilisticActor(
            TensorDictModule(actor_net, in_keys=[OBSERVATION], out_keys=[("agents", "logits")]),
            in_keys={"logits": ("agents", "logits"), "mask": ("agents", "action_mask")}, out_keys=[ACTION],
            distribution_class=MaskedCategorical, return_log_prob=True, log_prob_key=LOG_PROB)
        critic_net = MultiAgentMLP(d, 1, n, centralized=c.centralized_critic, share_params=True, **mlp)
        self.critic = TensorDictModule(critic_net, in_keys=[OBSERVATION], out_keys=[("agents", "state_value")])
        self.loss = ClipPPOLoss(self.actor, self.critic, clip_epsilon=c.clip_epsilon, entropy_coeff=c.entropy_coef,
                                critic_coeff=c.critic_coef, loss_critic_type="l2",
                                normalize_advantage=c.normalize_advantage, normalize_advantage_exclude_dims=(-2,))
        self.loss.set_keys(reward=("agents", "reward"), action=ACTION, sample_log_prob=LOG_PROB,
                           value=("agents", "state_value"), done=("agents", "done"),
                           terminated=("agents", "terminated"))
        self.loss.make_value_estimator(ValueEstimators.GAE, gamma=c.gamma, lmbda=c.lmbda)
        self.optimizer = torch.optim.Adam(self.loss.parameters(), lr=c.learning_rate)

    # -- rollouts ---------------------------------------------------------------------------------
    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        return self.split(self._rollout(self.actor, n)[1].numpy())

    def episodes(self, joint: np.ndarray, rewards: np.ndarray) -> Any:
        """Told pipelines as token episodes ``[n, L]`` (:meth:`replayed`) with the current policy's
        log-probabilities of the tokens."""
        data = self.replayed(joint, rewards)
        with torch.no_grad():
            data.set(LOG_PROB, self.actor.get_dist(data).log_prob(data.get(ACTION)))
        return data

    # -- learning ---------------------------------------------------------------------------------
    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        self._pending.append((np.asarray(joint, dtype=np.int64), np.asarray(rewards, dtype=np.float64)))
        told = sum(len(j) for j, _ in self._pending)
        if told >= (self.config.update_every or 1):
            joint = np.concatenate([j for j, _ in self._pending])
            rewards = np.concatenate([r for _, r in self._pending])
            self._pending = []
            self.update(self.episodes(joint, rewards))

    def update(self, data: Any) -> None:
        """GAE, then ``epochs`` passes of clipped PPO over ``data`` (episodes ``[n, L]``)."""
        c = self.config
        with torch.no_grad():
            self.loss.value_estimator(data, params=self.loss.critic_network_params,
                                      target_params=self.loss.target_critic_network_params)
        flat = data.reshape(-1)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.torch_rng)
            for _ in range(c.epochs):
                for batch in torch.randperm(len(flat)).chunk(c.minibatches):
                    terms = self.loss(flat[batch])
                    total = terms["loss_objective"] + terms["loss_critic"] + terms["loss_entropy"]
                    total.backward()
                    torch.nn.utils.clip_grad_norm_(self.loss.parameters(), c.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
            self.torch_rng = torch.get_rng_state()

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "loss": self.loss.state_dict(), "optimizer": self.optimizer.state_dict(),
                "torch_rng": self.torch_rng,
                "pending": [(torch.as_tensor(j), torch.as_tensor(r)) for j, r in self._pending]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.torch_rng = state["torch_rng"].clone()
        self._pending = [(j.numpy().copy(), r.numpy().copy()) for j, r in state["pending"]]
