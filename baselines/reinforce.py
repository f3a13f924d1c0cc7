"""The single-agent controller: one autoregressive LSTM over every agent's tokens, REINFORCE.

The NASNet/ENAS-style baseline of the poster's left panel: a single policy pi(A | S) emits
the whole joint action token by token (agents in order, so later modules see earlier
choices) and is trained with REINFORCE and a moving-average baseline b:

    grad J = mean_rows [ (R - b) * grad log pi(A | S) ] + entropy_coef * grad H(pi),
    b <- baseline_decay * b + (1 - baseline_decay) * mean(R)     (after each told batch;
                                                                  b starts at the first batch's mean)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ma2ml.envs.core.fields import Annotated, Range
from ma2ml.agents.base import LearnerConfig
from ma2ml.agents.policy import PolicyLearner
from ma2ml.envs.core.records import EvalRecord


@dataclass
class ReinforceConfig(LearnerConfig):
    """The REINFORCE controller over all modules."""

    hidden: Annotated[int, Range(1, 1024)] = 64
    """Width of the LSTM controller."""
    lr: Annotated[float, Range(0, 10, low_open=True)] = 5e-3
    """Adam learning rate."""
    baseline_decay: Annotated[float, Range(0, 1, high_open=True)] = 0.9
    """Decay of the moving-average reward baseline."""
    entropy_coef: Annotated[float, Range(0, 100)] = 1e-3
    """Weight of the entropy bonus."""


class ReinforceController(PolicyLearner):
    """One controller for all modules (see the module docstring)."""

    config_class = ReinforceConfig
    checkpointed = ("policies", "optimizer")

    def groups(self) -> dict[str, list[str]]:
        return {"controller": list(self.agents)}

    def build(self) -> None:
        self.policies = self.make_policies(self.config.hidden)
        self.optimizer = torch.optim.Adam(self.policies.parameters(), lr=self.config.lr)
        self.baseline: float | None = None

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        cfg = self.config
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        R = torch.as_tensor(rewards, dtype=torch.float32)
        _, log_pi, entropy = self.policies["controller"](self.states(len(R)), torch.as_tensor(joint))
        loss = -((R - self.baseline) * log_pi).mean() - cfg.entropy_coef * entropy.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.baseline = cfg.baseline_decay * self.baseline + (1 - cfg.baseline_decay) * float(rewards.mean())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.baseline = state["baseline"]
