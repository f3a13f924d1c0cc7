"""The single-agent joint view: one Gymnasium env whose action is every agent's tokens.

For SB3 and any single-agent library: the action is one ``MultiDiscrete`` holding the
concatenation of the agents' token vectors, in ``possible_agents`` order; observation,
reward and ``info`` are the parallel env's (see :mod:`ma2ml.envs.automl_v0`). Every slice is
checked by its agent's space (``ModuleSpace.check``): a bad token is the parallel env's one
``ValueError``, naming the agent, the token and its valid range. Registered
as ``ma2ml/JointAutoML-Digits-v0`` (and -CIFAR10-, -CIFAR100-, -DigitsBench-, -DigitsHard-, -ImageNet-) after
``import ma2ml.envs``.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ma2ml.envs.automl_v0 import parallel_env
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.records import checked_seed


class JointAutoMLEnv(gym.Env):
    """One controller for all modules; takes the parallel env's arguments."""

    metadata = {"render_modes": []}

    def __init__(self, **kwargs: Any) -> None:
        self.parallel = parallel_env(**kwargs)
        self.agents = list(self.parallel.possible_agents)
        self.layout = JointLayout.of(self.parallel)
        """Where each agent's tokens sit in the joint action."""
        self.action_space = gym.spaces.MultiDiscrete(self.layout.nvec)
        self.observation_space = self.parallel.observation_space(self.agents[0])

    def split(self, action: Any) -> dict[str, np.ndarray]:
        """Joint action vector -> agent -> tokens, each checked by its agent's space (int64)."""
        arr = action if isinstance(action, np.ndarray) else np.asarray(action, dtype=object)
        if arr.shape != self.action_space.shape:
            raise UserError(f"expected a joint action of shape {self.action_space.shape}, got {arr.shape}")
        return {a: self.parallel.spaces[a].check(arr[self.layout.slices[a]], a) for a in self.agents}

    def join(self, actions: dict[str, Any]) -> np.ndarray:
        """Agent -> tokens -> joint action vector (each agent's tokens checked by its space)."""
        return self.layout.join({a: self.parallel.spaces[a].check(actions[a], a) for a in self.agents})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        seed = None if seed is None else checked_seed(seed)  # np.int64(5) too; a bool or a float is refused
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        obs, _ = self.parallel.reset(seed=seed, options=options)
        return obs[self.agents[0]], {}

    def step(self, action: Any):
        _, rewards, _, _, infos = self.parallel.step(self.split(action))
        agent = self.agents[0]
        return self.parallel.descriptor(), rewards[agent], True, False, infos[agent]

    def close(self) -> None:
        self.parallel.close()
