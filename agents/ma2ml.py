"""MA2ML, MA2ML on-policy and MA2ML-Lite: one class, three configs.

Each agent i has its own autoregressive policy pi_i(A_i | S) (:mod:`ma2ml.agents.policy`);
a centralized critic Q(S, A) over the joint action is regressed on the observed rewards
(:mod:`ma2ml.agents.critic`). After every told batch the learner

1. stores the batch's <S, A, R> in the replay buffer (``replay=False``: the buffer holds the
   current batch only) and regresses Q on mini-batches of it (``critic_steps`` Adam steps);
2. takes ``policy_steps`` policy steps. Each step scores a batch of joint actions A with a
   return G and ascends, for every agent i,

       sum_rows  A_hat_i * grad log pi_i(a_i | S),
       A_hat_i = G - b(S, a_-i) - kl_coef * [log pi_i(a_i)/rho_i(a_i) - E_{pi_i} log pi_i/rho_i],
       b(S, a_-i) = E_{a_i' ~ pi_i} Q(S, a_i', a_-i)          (the counterfactual baseline),

   both expectations exact (a sum over every a_i', weighted by pi_i) when agent i has at most
   ``exact_baseline_max`` actions, else Monte-Carlo over ``baseline_samples`` (K) fresh
   samples of a_i' from pi_i, the same K for every row. In expectation over the rows this is
   the gradient of J = E_pi[Q(S, A)] - kl_coef * KL(pi(.|S) || rho(.|S)) (the poster's
   off-policy objective; tested against autograd of J on an enumerable game);
3. moves each target policy toward its policy once per told batch, as DMAC does:
   rho_i <- (1 - target_rate) rho_i + target_rate pi_i (default tau = 0.1 per batch, measured
   on held-out tuning seeds against DMAC's 0.01: docs/learners.md).

Optionally Q is an ensemble of ``critics`` independently initialised critics, each regressed on
its own mini-batches, scored as mean + ``optimism`` x standard deviation (optimism in the face
of uncertainty; 0 is the ensemble mean).

The variants differ only in their configs:

* ``ma2ml`` (:class:`MA2MLConfig`): rows are *fresh* samples from the current policies,
  G = Q(S, A) (no new trainings), kl_coef > 0, replay buffer;
* ``ma2ml-onpolicy`` (:class:`MA2MLOnPolicyConfig`): the same without replay;
* ``ma2ml-lite`` (:class:`MA2MLLiteConfig`): rows are the told actions, G = the observed
  reward R, kl_coef = 0, one step per batch: per-agent REINFORCE with the counterfactual
  baseline, grad J = E[grad log pi_i(A_i | S) (R - b(S, A_-i))].
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ma2ml.envs.core.fields import Annotated, Range
from ma2ml.agents.base import LearnerConfig
from ma2ml.agents.critic import CriticEnsemble, ReplayBuffer
from ma2ml.agents.policy import PolicyLearner
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.records import EvalRecord


@dataclass
class MA2MLConfig(LearnerConfig):
    """MA2ML (off-policy, KL-regularised actor-critic)."""

    hidden: Annotated[int, Range(1, 1024)] = 64
    """Width of the LSTM policies and of the critic's hidden layers."""
    policy_lr: Annotated[float, Range(0, 10, low_open=True)] = 1e-2
    """Adam learning rate of the policies pi_i (tuned: ``ma2ml/tuned/ma2ml.json``; 3e-3 before)."""
    critic_lr: Annotated[float, Range(0, 10, low_open=True)] = 1e-2
    """AdamW learning rate of the critic Q."""
    critic_weight_decay: Annotated[float, Range(0, 10)] = 0.1
    """AdamW weight decay of the critic (its generalisation beyond the evaluated pipelines)."""
    kl_coef: Annotated[float, Range(0, 100)] = 0.1
    """lambda: weight of KL(pi || rho) in the policy objective (0: plain E_pi[Q])."""
    target_rate: Annotated[float, Range(0, 1, low_open=True)] = 0.1
    """tau: Polyak rate of the target policies rho, once per told batch (DMAC's value, 0.01, is ~7x worse on
    the table's tuning seeds: benchmarks/ma2ml_sweep.py)."""
    fresh_samples: bool = True
    """Policy steps on fresh samples from pi scored by Q; False: on the told actions and their rewards."""
    replay: bool = True
    """Regress the critic on every evaluation so far (up to buffer_size); False: on the current batch only."""
    buffer_size: Annotated[int, Range(1, 10_000_000)] = 100_000
    """Capacity of the replay buffer (first in, first out)."""
    critic_steps: Annotated[int, Range(0, 10_000)] = 50
    """Critic regression steps per told batch (0 keeps Q fixed, e.g. an exact Q)."""
    critic_batch: Annotated[int, Range(1, 100_000)] = 64
    """Mini-batch size of a critic step."""
    policy_steps: Annotated[int, Range(1, 10_000)] = 5
    """Policy steps per told batch."""
    policy_batch: Annotated[int, Range(1, 100_000)] = 64
    """Fresh joint samples per policy step (with fresh_samples)."""
    baseline_samples: Annotated[int, Range(1, 10_000)] = 16
    """K: samples of a_i for the counterfactual baseline and the KL correction (agents too large to enumerate)."""
    exact_baseline_max: Annotated[int, Range(0, 1_000_000)] = 1024
    """Enumerate agent i's actions for the baseline and the KL correction when it has at most this many
    (0: always Monte-Carlo)."""
    critics: Annotated[int, Range(1, 64)] = 1
    """Critics in the Q ensemble (each with its own initialisation and mini-batches)."""
    optimism: Annotated[float, Range(-100, 100)] = 0.0
    """Q = ensemble mean + optimism x ensemble standard deviation (0: the mean; needs critics >= 2 to matter)."""


@dataclass
class MA2MLOnPolicyConfig(MA2MLConfig):
    """MA2ML on-policy: the critic sees the current batch only (the poster's ablation)."""

    replay: bool = False
    """Regress the critic on the current batch only."""
    policy_lr: Annotated[float, Range(0, 10, low_open=True)] = 3e-3
    """Adam learning rate of the policies (tuned: ``ma2ml/tuned/ma2ml-onpolicy.json``)."""
    kl_coef: Annotated[float, Range(0, 100)] = 0.03
    """Weight lambda of the KL term (tuned; 0.1 before)."""


@dataclass
class MA2MLLiteConfig(MA2MLConfig):
    """MA2ML-Lite: per-agent REINFORCE with the counterfactual baseline."""

    fresh_samples: bool = False
    """REINFORCE on the told actions and their observed rewards."""
    kl_coef: Annotated[float, Range(0, 100)] = 0.0
    """No KL regularisation."""
    policy_steps: Annotated[int, Range(1, 10_000)] = 1
    """One on-policy step per told batch."""


class MA2ML(PolicyLearner):
    """MA2ML and its variants (see the module docstring); the config picks the variant."""

    config_class = MA2MLConfig
    checkpointed = ("policies", "target_policies", "Q", "policy_optimizer", "critic_optimizer", "buffer")

    def build(self) -> None:
        cfg = self.config
        self.policies = self.make_policies(cfg.hidden)
        self.target_policies = copy.deepcopy(self.policies).requires_grad_(False)
        self.Q = CriticEnsemble(cfg.critics, self.joint_nvec, len(self.state), cfg.hidden)
        self.policy_optimizer = torch.optim.Adam(self.policies.parameters(), lr=cfg.policy_lr)
        self.critic_optimizer = torch.optim.AdamW(self.Q.parameters(), lr=cfg.critic_lr,
                                                 weight_decay=cfg.critic_weight_decay)
        self.buffer = ReplayBuffer(cfg.buffer_size, len(self.state), len(self.joint_nvec))
        self.all_actions = {
            agent: JointLayout.from_nvec({agent: self.joint_nvec[self.group_columns(agent)]}).all_rows()
            for agent in self.policies if self.enumerable(agent)
        }

    def enumerable(self, agent: str) -> bool:
        """Whether agent's baseline and KL correction are exact sums over its actions."""
        return math.prod(int(n) for n in self.joint_nvec[self.group_columns(agent)]) <= self.config.exact_baseline_max

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        A = torch.as_tensor(joint)
        R = torch.as_tensor(rewards, dtype=torch.float32)
        if not self.config.replay:
            self.buffer.clear()
        self.buffer.add(self.states(len(R)), A, R)
        self.update_critic()
        for _ in range(self.config.policy_steps):
            if self.config.fresh_samples:
                self.improve(self.sample_joint(self.config.policy_batch))
            else:
                self.improve(A, R)
        self.update_targets()

    def update_critic(self) -> None:
        """``critic_steps`` regression steps of every critic of Q, each on its own mini-batches of the buffer."""
        for _ in range(self.config.critic_steps):
            loss = 0.0
            for critic in self.Q:
                S, A, R = self.buffer.sample(self.config.critic_batch, self.generator)
                loss = loss + F.mse_loss(critic(S, A), R)
            self.critic_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.critic_optimizer.step()

    def q_value(self, S: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """Q(S, A) of each row: the ensemble's mean + optimism x standard deviation."""
        return self.Q.score(S, joint, self.config.optimism)

    @torch.no_grad()
    def counterfactuals(self, agent: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions a_i', their weights, log pi_i(a_i')) over which the baseline and the KL correction
        average: every action weighted by pi_i when enumerable, else K samples of pi_i weighted 1/K."""
        policy = self.policies[agent]
        if agent in self.all_actions:
            actions = torch.as_tensor(self.all_actions[agent])
            log_pi = policy.log_prob(self.states(len(actions)), actions)
            return actions, log_pi.exp(), log_pi
        k = self.config.baseline_samples
        samples, log_pi = policy.sample(self.states(k), self.generator)
        return samples, torch.full((k,), 1.0 / k), log_pi

    @torch.no_grad()
    def baseline(self, agent: str, joint: torch.Tensor,
                 counterfactuals: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """b(S, a_-i) = E_{a_i' ~ pi_i} Q(S, a_i', a_-i) of each row: the counterfactual baseline."""
        actions, weights, _ = self.counterfactuals(agent) if counterfactuals is None else counterfactuals
        m, k = len(joint), len(actions)
        swapped = joint.repeat_interleave(k, 0)
        swapped[:, self.group_columns(agent)] = actions.repeat(m, 1)
        return (self.q_value(self.states(m * k), swapped).view(m, k) * weights).sum(1)

    @torch.no_grad()
    def advantages(self, joint: torch.Tensor, G: torch.Tensor) -> dict[str, torch.Tensor]:
        """Â_i of each row for every agent: G - b(S, a_-i) - lambda [log pi_i/rho_i (a_i) - E_pi_i log pi_i/rho_i]."""
        lam, S = self.config.kl_coef, self.states(len(joint))
        result = {}
        for agent, policy in self.policies.items():
            cf = self.counterfactuals(agent)
            advantage = G - self.baseline(agent, joint, cf)
            if lam > 0:
                rho = self.target_policies[agent]
                a_i = joint[:, self.group_columns(agent)]
                log_ratio = policy.log_prob(S, a_i) - rho.log_prob(S, a_i)
                actions, weights, log_pi = cf
                mean_log_ratio = (weights * (log_pi - rho.log_prob(self.states(len(actions)), actions))).sum()
                advantage = advantage - lam * (log_ratio - mean_log_ratio)
            result[agent] = advantage
        return result

    def surrogate(self, joint: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """sum_i Â_i log pi_i(a_i | S) of each row, Â_i held fixed: its gradient is the policy-gradient estimate."""
        S = self.states(len(joint))
        advantages = self.advantages(joint, G)
        return sum(advantages[agent] * policy.log_prob(S, joint[:, self.group_columns(agent)])
                   for agent, policy in self.policies.items())

    def improve(self, joint: torch.Tensor, rewards: torch.Tensor | None = None) -> None:
        """One policy step on rows ``joint``; G = ``rewards`` when given, else Q(S, joint)."""
        with torch.no_grad():
            G = self.q_value(self.states(len(joint)), joint) if rewards is None else rewards
        loss = -self.surrogate(joint, G).mean()
        self.policy_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.policy_optimizer.step()

    @torch.no_grad()
    def update_targets(self) -> None:
        """rho_i <- (1 - tau) rho_i + tau pi_i for every agent (the Polyak step)."""
        for rho_p, pi_p in zip(self.target_policies.parameters(), self.policies.parameters(), strict=True):
            rho_p.lerp_(pi_p, self.config.target_rate)
