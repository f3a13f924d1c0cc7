"""The centralized critic Q(S, A) and the replay buffer of <S, A, R>.

Episodes are one step long, so Q(S, A) = E[R | S, A] and the critic is a regression of
the observed rewards on the state and the joint action (no bootstrapping). The joint action
enters one-hot (an ``EmbeddingBag`` summing one vector per (token position, value), the
same as a linear layer on the concatenated one-hots), followed by a ReLU MLP, so the
critic can represent interactions between tokens of different agents.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


class Critic(nn.Module):
    """Q(S, A) over the joint token vector (see the module docstring)."""

    def __init__(self, nvec: Sequence[int], state_dim: int, hidden: int = 64) -> None:
        super().__init__()
        sizes = torch.as_tensor(np.array(nvec, dtype=np.int64))
        self.register_buffer("offsets", torch.cumsum(sizes, 0) - sizes)
        self.tokens = nn.EmbeddingBag(int(sizes.sum()), hidden, mode="sum")
        self.state_in = nn.Linear(state_dim, hidden)
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, state: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """Q of each row: ``state`` (n, state_dim), ``joint`` (n, tokens) -> (n,)."""
        return self.mlp(self.tokens(joint + self.offsets) + self.state_in(state))[:, 0]


class CriticEnsemble(nn.ModuleList):
    """``members`` critics with their own initialisations; :meth:`score` aggregates them."""

    def __init__(self, members: int, nvec: Sequence[int], state_dim: int, hidden: int = 64) -> None:
        super().__init__(Critic(nvec, state_dim, hidden) for _ in range(members))

    def forward(self, state: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """Every member's Q of each row, ``(n, members)``."""
        return torch.stack([critic(state, joint) for critic in self], 1)

    def score(self, state: torch.Tensor, joint: torch.Tensor, optimism: float = 0.0) -> torch.Tensor:
        """mean + optimism x standard deviation over the members, ``(n,)`` (one member: its Q)."""
        if len(self) == 1:
            return self[0](state, joint)
        q = self(state, joint)
        return q.mean(1) + optimism * q.std(1, correction=0) if optimism else q.mean(1)


class ReplayBuffer:
    """The last ``capacity`` <S, A, R> triples (first in, first out)."""

    def __init__(self, capacity: int, state_dim: int, num_tokens: int) -> None:
        self.capacity = capacity
        self.states = torch.empty(0, state_dim)
        self.actions = torch.empty(0, num_tokens, dtype=torch.long)
        self.rewards = torch.empty(0)

    def __len__(self) -> int:
        return len(self.rewards)

    def add(self, states: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor) -> None:
        self.states = torch.cat([self.states, states])[-self.capacity:]
        self.actions = torch.cat([self.actions, actions])[-self.capacity:]
        self.rewards = torch.cat([self.rewards, rewards.float()])[-self.capacity:]

    def clear(self) -> None:
        self.states, self.actions, self.rewards = self.states[:0], self.actions[:0], self.rewards[:0]

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A mini-batch drawn uniformly with replacement."""
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        return self.states[idx], self.actions[idx], self.rewards[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"states": self.states, "actions": self.actions, "rewards": self.rewards}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.states, self.actions, self.rewards = state["states"], state["actions"], state["rewards"]
