"""QMIX and VDN as ma2ml learners, built from TorchRL's mixers and loss module, on the token view.

The value-based MARL algorithms of BenchMARL and EPyMARL, assembled from TorchRL's own parts
the way its multi-agent DQN tutorial and BenchMARL do: every agent's utility Q_i(o_i, ·) is
a ``MultiAgentMLP`` (parameters shared across agents by default; the agent one-hot in the
observation tells them apart); a ``QValueModule`` picks each agent's greedy action among the
actions its ``("agents", "action_mask")`` allows, and an ``EGreedyModule`` replaces it, with
probability epsilon per agent and step, by a uniform allowed action. A mixer turns the agents'
chosen utilities into one joint value Q_tot, which TorchRL's ``QMixerLoss`` trains by
one-step TD (``ValueEstimators.TD0``) against target networks updated by ``SoftUpdate``:

    Q_tot(s_t, a_t) <- r_{t+1} + gamma * (1 - terminated_{t+1}) * Q_tot'(s_{t+1}, argmax_a Q'(o_{t+1}, a))

The two differ only in the mixer: **QMIX** (Rashid et al. 2018) mixes with TorchRL's
``QMixer`` (a monotonic network whose weights are generated from the global state, the token
env's ``"state"``: S, the step one-hot and every chosen token), **VDN** (Sunehag et al. 2018)
with TorchRL's ``VDNMixer`` (Q_tot = sum_i Q_i).

They play the token-level game of :mod:`ma2ml.envs.token_v0` (``observe="own"`` by default)
as the TorchRL PPO learners do (:mod:`ma2ml.baselines.torchrl_marl`), in the batched TorchRL
token env (:class:`ma2ml.envs.torchrl_env.TokenTableEnv`, without a table):

* ``ask(n)`` rolls out n token episodes with the epsilon-greedy policy and returns their
  pipelines; **one evaluation = one pipeline = one token episode**, as for every learner;
* ``tell`` hands back one reward per pipeline, the reward of the episode's last step (0 before);
  the told episodes are rebuilt from their tokens (observations replayed in the token env),
  their L transitions each enter a replay buffer (``ReplayBuffer`` over a ``LazyTensorStorage``
  of ``buffer_size`` episodes), epsilon anneals by one step per told episode, and
  ``updates_per_batch`` gradient steps (Adam, grad-norm clipping, a soft target update after
  each) run on ``batch_size`` transitions sampled uniformly, with replacement.

A row the policy did not propose (the base learner's no-repeat replacement, or an action told
from elsewhere) is learnt from like any other: Q-learning is off-policy. ``_ask`` has no side
effect but drawing from the learner's torch RNG, so the base class's no-repeat protocol may
call it again to replace repeats (``handles_repeats`` stays False).

Seeded and deterministic on CPU: the networks are built under a forked, seeded torch RNG, and
every draw (exploration, replay sampling) runs on the learner's own saved torch RNG state inside
``torch.random.fork_rng``, so no global state is read or changed. Checkpoints hold the loss
module (Q network, mixer and their targets), the optimizer, epsilon, the replay buffer and the
RNG state: a resumed run continues identically (tested). TorchRL is an optional extra
(``pip install -e ".[marl]"``); without it, making these learners is one clear error.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ma2ml.agents.base import LearnerConfig, quiet_logger
from ma2ml.baselines.torchrl_marl import ACTION, OBSERVATION, TokenGameLearner
from ma2ml.envs.core.fields import Annotated, Length, Literal, Range
from ma2ml.envs.core.records import EvalRecord

MASK = ("agents", "action_mask")
ACTION_VALUE = ("agents", "action_value")
LOCAL_VALUE = ("agents", "chosen_action_value")
GLOBAL_VALUE = "chosen_action_value"


@dataclass
class QMixConfig(LearnerConfig):
    """Settings of the TorchRL value-decomposition learners (QMIX and VDN differ by ``mixer``)."""

    mixer: Literal["qmix", "vdn"] = "qmix"
    """``"qmix"``: TorchRL's ``QMixer`` (monotonic, state-conditioned); ``"vdn"``: its ``VDNMixer`` (the sum)."""
    observe: Literal["own", "all"] = "own"
    """The token view's observations: ``"own"`` (an agent sees its own earlier tokens) or ``"all"``."""
    hidden: Annotated[tuple[int, ...], Range(1, 1024), Length(1, 16)] = (64, 64)
    """Hidden layers of the agents' Q network, a ``MultiAgentMLP`` (tanh)."""
    share_params: bool = True
    """One Q network for all agents (told apart by the agent one-hot); False: one per agent."""
    mixing_embed_dim: Annotated[int, Range(1, 1024)] = 32
    """Width of QMIX's mixing network (unused by VDN)."""
    learning_rate: Annotated[float, Range(0, 10, low_open=True)] = 1e-3
    """Adam learning rate of the Q network and the mixer."""
    gamma: Annotated[float, Range(0, 1)] = 1.0
    """Discount over the token steps (1: the one terminal reward counts fully at every step)."""
    epsilon_start: Annotated[float, Range(0, 1)] = 1.0
    """Exploration rate at the start: the chance that an agent's token is a uniform allowed one."""
    epsilon_end: Annotated[float, Range(0, 1)] = 0.1
    """Exploration rate once annealed."""
    epsilon_episodes: Annotated[int, Range(1, 1_000_000)] = 250
    """Told episodes over which epsilon falls linearly from ``epsilon_start`` to ``epsilon_end`` (QMIX's tuned
    value, ``ma2ml/tuned/qmix.json``; 100 before)."""
    buffer_size: Annotated[int, Range(1, 10_000)] = 500
    """Told episodes the replay buffer keeps (L transitions each); the oldest are overwritten."""
    batch_size: Annotated[int, Range(1, 100_000)] = 64
    """Transitions per gradient step, sampled uniformly with replacement from the buffer."""
    updates_per_batch: Annotated[int, Range(1, 10_000)] = 16
    """Gradient steps after each told batch."""
    tau: Annotated[float, Range(0, 0.5, low_open=True)] = 0.05
    """Soft target update: target <- (1 - tau) * target + tau * online, after every gradient step."""
    max_grad_norm: Annotated[float, Range(0, 1e6, low_open=True)] = 10.0
    """Gradient-norm clipping."""

    def validate(self) -> None:
        self._require("epsilon_end", self.epsilon_end <= self.epsilon_start,
                      f"at most epsilon_start = {self.epsilon_start} (epsilon anneals downwards)")


@dataclass
class VDNConfig(QMixConfig):
    """VDN: the joint value is the sum of the agents' utilities."""

    mixer: Literal["qmix", "vdn"] = "vdn"
    """VDN's mixer is TorchRL's ``VDNMixer``."""
    learning_rate: Annotated[float, Range(0, 10, low_open=True)] = 3e-3
    """Adam learning rate of the Q network (tuned: ``ma2ml/tuned/vdn.json``; 1e-3 before)."""
    epsilon_episodes: Annotated[int, Range(1, 1_000_000)] = 100
    """Told episodes over which epsilon falls linearly (VDN's tuned value; QMIX's is 250)."""


class QMix(TokenGameLearner):
    """QMIX / VDN from TorchRL components on the token view (see the module docstring)."""

    config_class = QMixConfig
    needs = "QMIX and VDN"

    def build(self) -> None:
        """The Q network, mixer, loss, target updater, exploration, replay buffer and optimizer
        (called under a seeded torch RNG)."""
        from tensordict.nn import TensorDictModule, TensorDictSequential
        from torchrl.data import Categorical, LazyTensorStorage, ReplayBuffer
        from torchrl.modules import EGreedyModule, MultiAgentMLP, QMixer, QValueModule, VDNMixer
        from torchrl.objectives import QMixerLoss, SoftUpdate, ValueEstimators

        c, lay = self.config, self.token_layout
        n, d = len(lay.agents), lay.observation_size
        net = MultiAgentMLP(d, lay.actions, n, centralized=False, share_params=c.share_params, depth=len(c.hidden),
                            num_cells=list(c.hidden), activation_class=torch.nn.Tanh)
        self.Q = TensorDictSequential(
            TensorDictModule(net, in_keys=[OBSERVATION], out_keys=[ACTION_VALUE]),
            QValueModule(action_space="categorical", action_value_key=ACTION_VALUE, action_mask_key=MASK,
                         out_keys=[ACTION, ACTION_VALUE, LOCAL_VALUE]))
        """The agents' utilities and greedy masked actions."""
        if c.mixer == "qmix":
            mixer = QMixer(state_shape=(lay.state_size,), mixing_embed_dim=c.mixing_embed_dim, n_agents=n,
                           device="cpu")
            self.mixer = TensorDictModule(mixer, in_keys=[LOCAL_VALUE, "state"], out_keys=[GLOBAL_VALUE])
        else:
            self.mixer = TensorDictModule(VDNMixer(n, device="cpu"), in_keys=[LOCAL_VALUE], out_keys=[GLOBAL_VALUE])
        self.loss = QMixerLoss(self.Q, self.mixer, delay_value=True, action_space="categorical")
        self.loss.make_value_estimator(ValueEstimators.TD0, gamma=c.gamma)
        self.target_update = SoftUpdate(self.loss, tau=c.tau)
        self.explore = EGreedyModule(Categorical(lay.actions, shape=(n,), dtype=torch.long), eps_init=c.epsilon_start,
                                     eps_end=c.epsilon_end, annealing_num_steps=c.epsilon_episodes,
                                     action_key=ACTION, action_mask_key=MASK)
        """Epsilon-greedy over the allowed actions; ``explore.eps`` anneals per told episode."""
        self.policy = TensorDictSequential(self.Q, self.explore)
        self.replay = ReplayBuffer(storage=LazyTensorStorage(c.buffer_size * lay.steps), batch_size=c.batch_size)
        """Told transitions (the loss's input keys), flattened from the ``[n, L]`` episodes."""
        self.optimizer = torch.optim.Adam(self.loss.parameters(), lr=c.learning_rate)

    # -- rollouts ---------------------------------------------------------------------------------
    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        return self.split(self._rollout(self.policy, n)[1].numpy())

    def episodes(self, joint: np.ndarray, rewards: np.ndarray) -> Any:
        """Told pipelines as token episodes ``[n, L]`` (:meth:`replayed`), the joint reward also at the root,
        where ``QMixerLoss`` reads it."""
        data = self.replayed(joint, rewards)
        data.set(("next", "reward"), data.get(("next", "agents", "reward"))[:, :, 0].clone())
        return data

    # -- learning ---------------------------------------------------------------------------------
    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        data = self.episodes(joint, rewards)
        with quiet_logger("torchrl"):
            self.replay.extend(data.reshape(-1).select(*sorted(self.loss.in_keys, key=str)))
        self.explore.step(len(joint))
        self.update()

    def update(self) -> None:
        """``updates_per_batch`` TD steps of ``QMixerLoss`` on sampled transitions, a soft target update after each."""
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.torch_rng)
            for _ in range(c.updates_per_batch):
                self.loss(self.replay.sample())["loss"].backward()
                torch.nn.utils.clip_grad_norm_(self.loss.parameters(), c.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
                self.target_update.step()
            self.torch_rng = torch.get_rng_state()

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "loss": self.loss.state_dict(), "optimizer": self.optimizer.state_dict(),
                "explore": self.explore.state_dict(), "replay": self.replay.state_dict(), "torch_rng": self.torch_rng}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.explore.load_state_dict(state["explore"])
        with quiet_logger("torchrl"):
            self.replay.load_state_dict(state["replay"])
        self.torch_rng = state["torch_rng"].clone()
