"""Autoregressive token policies (the NASNet/ENAS LSTM controller) and the learners built on them.

:class:`AutoregressivePolicy` is pi(tokens | S): an LSTM cell whose initial state is a
function of the task descriptor S; at step t it emits a categorical distribution over token
t (one linear head per token, zero-initialised so the initial policy is uniform) and feeds
the embedding of the chosen token to step t + 1, so later tokens see earlier ones.

:class:`PolicyLearner` is the base of learners that act by sampling such policies, one per
*group* of agents: one group per agent for MA2ML (per-agent policies pi_i), a single group
holding every agent for the single-agent controller. It owns a seeded ``torch.Generator``
(all sampling), builds its networks under a forked, seeded torch RNG (no global state is
touched) and checkpoints the attributes named in ``checkpointed``.
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ma2ml.agents.base import Learner, LearnerConfig
from ma2ml.envs.core.protocol import AutoMLEnv


class AutoregressivePolicy(nn.Module):
    """pi(a | S) over a token vector of sizes ``nvec`` (see the module docstring)."""

    def __init__(self, nvec: Sequence[int], state_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.nvec = [int(n) for n in nvec]
        self.init = nn.Linear(state_dim, 2 * hidden)
        self.start = nn.Parameter(torch.zeros(hidden))
        self.embed = nn.ModuleList(nn.Embedding(n, hidden) for n in self.nvec[:-1])
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.nvec)
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, state: torch.Tensor, tokens: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tokens (n, T), log pi(tokens | S) (n,), summed per-step entropy (n,)).

        With ``tokens`` the policy scores them (teacher forcing); without, it samples them
        with ``generator``. ``state`` is (n, state_dim).
        """
        n = state.shape[0]
        h, c = torch.tanh(self.init(state)).chunk(2, dim=-1)
        x = self.start.expand(n, -1)
        chosen, log_prob, entropy = [], state.new_zeros(n), state.new_zeros(n)
        for t, head in enumerate(self.heads):
            h, c = self.cell(x, (h, c))
            logp = head(h).log_softmax(-1)
            tok = tokens[:, t] if tokens is not None else torch.multinomial(logp.exp(), 1, generator=generator)[:, 0]
            log_prob = log_prob + logp.gather(1, tok[:, None])[:, 0]
            entropy = entropy - (logp.exp() * logp).sum(-1)
            chosen.append(tok)
            if t + 1 < len(self.heads):
                x = self.embed[t](tok)
        return torch.stack(chosen, 1), log_prob, entropy

    def log_prob(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self(state, tokens)[1]

    @torch.no_grad()
    def sample(self, state: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, their log-probabilities), without gradients."""
        tokens, log_prob, _ = self(state, generator=generator)
        return tokens, log_prob


class PolicyLearner(Learner):
    """A learner that samples its actions from :class:`AutoregressivePolicy` s, one per agent group."""

    checkpointed: ClassVar[tuple[str, ...]] = ("policies",)
    """Attributes with ``state_dict``/``load_state_dict`` that a checkpoint holds."""

    def __init__(self, env: AutoMLEnv, config: LearnerConfig | None = None, seed: int = 0) -> None:
        super().__init__(env, config, seed)
        self.S = torch.as_tensor(self.state, dtype=torch.float32)
        self.generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.build()

    def groups(self) -> dict[str, list[str]]:
        """Policy name -> the agents whose tokens it emits (in agent order); default: one per agent."""
        return {a: [a] for a in self.agents}

    def group_columns(self, group: str) -> list[int]:
        """Columns of the joint token array that ``group``'s policy emits."""
        return [i for a in self.groups()[group] for i in range(self.slices[a].start, self.slices[a].stop)]

    def make_policies(self, hidden: int) -> nn.ModuleDict:
        return nn.ModuleDict({
            g: AutoregressivePolicy(self.joint_nvec[self.group_columns(g)], len(self.state), hidden)
            for g in self.groups()
        })

    def states(self, n: int) -> torch.Tensor:
        """S repeated for a batch of ``n``."""
        return self.S.expand(n, -1)

    def sample_joint(self, n: int) -> torch.Tensor:
        """``n`` joint token vectors (n, total tokens) from the current policies."""
        joint = torch.empty(n, len(self.joint_nvec), dtype=torch.long)
        for g, policy in self.policies.items():
            joint[:, self.group_columns(g)] = policy.sample(self.states(n), self.generator)[0]
        return joint

    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        return self.split(self.sample_joint(n).numpy())

    @abstractmethod
    def build(self) -> None:
        """Create the networks and optimizers (called under a seeded torch RNG)."""

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "generator": self.generator.get_state(),
            **{name: getattr(self, name).state_dict() for name in self.checkpointed},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
        for name in self.checkpointed:
            getattr(self, name).load_state_dict(state[name])
