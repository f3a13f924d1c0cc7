"""A Stable-Baselines3 ``VecEnv`` over a parallel AutoML env, in the joint view.

:class:`AutoMLVecEnv` runs ``num_envs`` copies of the one-step game: each action is the
concatenation of every agent's tokens (one ``MultiDiscrete``, :mod:`ma2ml.envs.joint`), each
observation the task descriptor S. ``step_wait`` hands the ``num_envs`` actions to
``evaluate`` as one batch; by default that is :meth:`ma2ml.envs.vector.VectorAutoML.evaluate`,
so ``PPO("MlpPolicy", AutoMLVecEnv(env, 8))`` trains SB3 on batches of 8 concurrent
evaluations. Every episode ends after its step (``dones`` all True,
``infos[i]["terminal_observation"]`` = S, never truncated); the observation returned is S
again, the next episode's. It lives in ``baselines`` beside the SB3 learners so that
``import ma2ml.envs`` never loads Stable-Baselines3.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.vector import Evaluate, VectorAutoML


def joint_action_space(env: AutoMLEnv) -> gym.spaces.MultiDiscrete:
    """The joint view's action space: every agent's token sizes, concatenated in agent order."""
    return gym.spaces.MultiDiscrete(JointLayout.of(env).nvec)


class AutoMLVecEnv(VecEnv):
    """An SB3 ``VecEnv`` of ``num_envs`` one-step AutoML games (see the module docstring)."""

    def __init__(self, env: AutoMLEnv, num_envs: int, evaluate: Evaluate | None = None) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise UserError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.env = env
        self.agents = list(env.possible_agents)
        self.evaluate = evaluate if evaluate is not None else VectorAutoML(env).evaluate
        self.layout = JointLayout.of(env)
        self._actions: np.ndarray | None = None
        super().__init__(int(num_envs), env.observation_space(self.agents[0]), joint_action_space(env))

    def observations(self) -> np.ndarray:
        return np.tile(np.asarray(self.env.state(), dtype=np.float32), (self.num_envs, 1))

    def split(self, joint: np.ndarray) -> list[dict[str, np.ndarray]]:
        """(num_envs, tokens) joint actions -> agent -> tokens, one dict each."""
        return self.layout.split_rows(np.asarray(joint, dtype=np.int64).reshape(self.num_envs, -1))

    def reset(self) -> VecEnvObs:
        self._reset_seeds()
        self._reset_options()
        return self.observations()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise UserError("step_wait() called without step_async()")
        rewards, infos = self.evaluate(self.split(self._actions))
        self._actions = None
        obs = self.observations()
        infos = [{**info, "terminal_observation": o, "TimeLimit.truncated": False}
                 for info, o in zip(infos, obs, strict=True)]
        return obs, np.asarray(rewards, dtype=np.float32), np.ones(self.num_envs, dtype=bool), infos

    def close(self) -> None:
        """The wrapped env belongs to the caller, who closes it."""

    def _indices(self, indices: VecEnvIndices) -> range | Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else indices

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.env, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [getattr(self.env, method_name)(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]
