"""Batched TorchRL envs of the table benchmarks: N games at once, every lookup a torch index.

The reward of every pipeline of the table is computed once, at construction, through the
pipeline env's own evaluator and reward (``TableEvaluator.rewards``: the same numbers the
PettingZoo env returns); a step then only moves integer tensors, and the final reward is an
index into that vector by the pipeline's mixed-radix number (:class:`~ma2ml.envs.core.layout.JointLayout`).

    from ma2ml.envs.torchrl_env import table_env
    env = table_env(num_envs=4096, view="token", table_seed=0)   # an EnvBase, batch_size [4096]
    data = env.rollout(env.layout.steps, break_when_any_done=False)

Two views, each with the keys, shapes and dtypes that TorchRL's ``PettingZooWrapper``
gives the corresponding PettingZoo env (with a leading batch dimension N), so a policy
written for one runs on the other:

* ``view="token"`` (:class:`TokenTableEnv`) mirrors ``PettingZooWrapper(TokenAutoML-...,
  group_map=MarlGroupMapType.ALL_IN_ONE_GROUP, categorical_actions=True, return_state=True)``:
  one group ``"agents"`` of shape ``[N, n_agents]`` with ``("agents", "observation",
  "observation")`` ``[N, n, D]``, ``("agents", "action_mask")`` ``[N, n, A]`` bool,
  ``("agents", "action")`` ``Categorical(A)`` ``[N, n]`` (its spec's mask follows the
  game), ``("agents", "reward")`` ``[N, n, 1]``, ``done``/``terminated``/``truncated`` at
  the root ``[N, 1]`` and in the group ``[N, n, 1]``, and the global ``"state"`` ``[N, d + L
  + sum of token sizes]``. Episodes are L steps (:mod:`ma2ml.envs.token_v0`).
* ``view="joint"`` (:class:`JointTableEnv`) mirrors ``PettingZooWrapper(AutoML-...,
  categorical_actions=True)``: one group per agent, ``(agent, "observation")`` ``[N, 1, d]``
  (the descriptor S), ``(agent, "action")`` ``[N, 1, T_i]`` (the agent's tokens), one-step
  episodes.

``table_seed`` (the replicate) works as in the PettingZoo env: a fixed replicate, or
``"random"``, where each finished episode draws one with a 62-bit seed from the env's own
``torch.Generator`` (``set_seed``) and takes ``seed % replicates`` as the table evaluator does.
A masked-out token is one ``ValueError`` (these envs have no ``"terminate"`` mode). The
envs are stateful (the chosen tokens live in the env); partial resets (``"_reset"``) and
TorchRL's auto-reset in ``rollout(..., break_when_any_done=False)`` are supported.
``check_env_specs`` passes on both (tested).

:class:`TokenTableEnv` also runs without a table (``rewards=None``: the reward is 0 at
every step): the MAPPO/IPPO learners (:mod:`ma2ml.baselines.torchrl_marl`) roll out token
episodes in it and fill in the reward of the evaluated pipeline themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, MultiCategorical, Unbounded
from torchrl.envs import EnvBase

from ma2ml.envs.automl_v0 import OBS_BOUND
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.token_v0 import TokenLayout

MAX_PIPELINES = 50_000_000
"""The most pipelines a reward vector is precomputed for (a float32 each, per replicate)."""
VIEWS = ("token", "joint")
"""Valid ``view`` values of :func:`table_env`."""


@dataclass(frozen=True)
class RewardTable:
    """The reward of every pipeline of a table env, per replicate (torch tensors)."""

    values: torch.Tensor
    """``(pipelines, R)`` float32: column r answers with seed r (replicate ``r % replicates``)."""
    replicates: torch.Tensor
    """``(pipelines,)`` int64: stored replicates of each pipeline (1 everywhere in a fixed-replicate env)."""
    radix: torch.Tensor
    """``(T,)`` int64: the mixed-radix weights of the joint tokens (pipeline number = tokens @ radix)."""

    @classmethod
    def of(cls, env: Any) -> RewardTable:
        """From a table env (``ma2ml/AutoML-DigitsBench-v0`` or any env whose evaluator has a
        vectorised ``rewards(rows, reward_fn, seeds)``), with its reward function."""
        evaluator = env.evaluator
        if not callable(getattr(evaluator, "rewards", None)):
            raise UserError(f"the batched TorchRL env needs a table env (an evaluator with a vectorised "
                             f"rewards(), e.g. ma2ml/AutoML-DigitsBench-v0); {type(evaluator).__name__} has none")
        layout = JointLayout.of(env)
        if layout.pipelines > MAX_PIPELINES:
            raise UserError(f"{layout.pipelines:,} pipelines are too many to precompute (at most {MAX_PIPELINES:,})")
        rows = layout.all_rows()
        randomized = getattr(evaluator, "replicate", None) == "random"
        replicates = (np.array(evaluator.table.replicates, dtype=np.int64) if randomized
                      else np.ones(len(rows), dtype=np.int64))
        values = np.stack([evaluator.rewards(rows, env.reward_fn, np.full(len(rows), r)) for r in
                           range(int(replicates.max()))], axis=1)
        radix = np.concatenate([np.cumprod(layout.nvec[::-1])[::-1][1:], [1]]).astype(np.int64)
        return cls(torch.as_tensor(values, dtype=torch.float32), torch.as_tensor(replicates), torch.as_tensor(radix))

    def to(self, device: torch.device) -> RewardTable:
        return RewardTable(self.values.to(device), self.replicates.to(device), self.radix.to(device))

    def __call__(self, tokens: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Rewards ``(B,)`` of complete token rows ``(B, T)``."""
        index = tokens @ self.radix
        if self.values.shape[1] == 1:
            return self.values[index, 0]
        seeds = torch.randint(2**62, index.shape, generator=generator, device=index.device)
        return self.values[index, seeds % self.replicates[index]]


def _bool(shape: tuple[int, ...], device: torch.device) -> Categorical:
    return Categorical(2, shape=shape, dtype=torch.bool, device=device)


def _done_spec(shape: tuple[int, ...], device: torch.device) -> dict[str, Categorical]:
    return {key: _bool((*shape, 1), device) for key in ("done", "terminated", "truncated")}


class _TableEnvBase(EnvBase):
    """What both views share: the batch, the generator, the reward table."""

    def __init__(self, num_envs: int, rewards: RewardTable | None, device: str | torch.device = "cpu",
                 seed: int | None = None) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise UserError(f"num_envs must be a positive integer, got {num_envs!r}")
        super().__init__(device=device, batch_size=torch.Size([int(num_envs)]))
        self.num_envs = int(num_envs)
        self.rewards = None if rewards is None else rewards.to(self.device)
        """The reward table (None: rewards stay 0, to be filled by the caller)."""
        self.generator = torch.Generator(device=self.device)
        """Draws the replicate of each finished episode in a ``table_seed="random"`` env."""
        self.generator.manual_seed(0 if seed is None else int(seed))

    def _set_seed(self, seed: int | None) -> None:
        self.generator.manual_seed(0 if seed is None else int(seed))

    def _reward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.rewards is None:
            return torch.zeros(len(tokens), device=self.device)
        return self.rewards(tokens, self.generator)

    def _reset_rows(self, tensordict: TensorDictBase | None) -> torch.Tensor | None:
        """The rows a ``"_reset"`` entry names (None: all)."""
        if tensordict is None:
            return None
        reset = tensordict.get("_reset", None)
        return None if reset is None else reset.reshape(self.num_envs)


class TokenTableEnv(_TableEnvBase):
    """The token view, batched (see the module docstring)."""

    def __init__(self, layout: TokenLayout, descriptor: Any, num_envs: int, rewards: RewardTable | None = None,
                 device: str | torch.device = "cpu", seed: int | None = None) -> None:
        super().__init__(num_envs, rewards, device, seed)
        self.layout = layout
        """The token schedule and observation encoding (shared with the PettingZoo token env)."""
        dev, n, N = self.device, len(layout.agents), self.num_envs
        T, L, A = layout.joint.size, layout.steps, layout.actions
        descriptor = torch.as_tensor(np.asarray(descriptor, dtype=np.float32), device=dev)
        steps = torch.eye(L + 1, L, device=dev)  # row L: all zeros (after the last step)
        self._prefix = torch.cat([descriptor.expand(L + 1, n, -1), steps[:, None, :].expand(-1, n, -1),
                                  torch.eye(n, device=dev).expand(L + 1, n, n)], dim=-1)
        """The observation's constant part per step ``(L + 1, n, d + L + n)``."""
        self._state_prefix = torch.cat([descriptor.expand(L + 1, -1), steps], dim=-1)
        self._column = torch.as_tensor(np.where(layout.column >= 0, layout.column, T), device=dev)
        """Joint column per step and agent ``(L, n)``; T (a scratch column) for a no-op."""
        self._size = torch.tensor(layout.size, device=dev)
        self._mask = torch.tensor(layout.mask, device=dev).bool()
        self._offsets = torch.as_tensor(np.append(layout.offsets, layout.onehot_size), device=dev)
        self._visible = torch.tensor(layout.visible, device=dev, dtype=torch.float32)
        self._tokens = torch.full((N, T + 1), -1, dtype=torch.long, device=dev)
        self._t = torch.zeros(N, dtype=torch.long, device=dev)
        self._agents_false = torch.zeros(N, n, 1, dtype=torch.bool, device=dev)
        self._false = torch.zeros(N, 1, dtype=torch.bool, device=dev)
        box = (-OBS_BOUND, OBS_BOUND)
        self.full_observation_spec = Composite({
            "agents": Composite({
                "observation": Composite({"observation": Bounded(*box, (N, n, layout.observation_size), device=dev)},
                                         shape=(N, n)),
                "action_mask": _bool((N, n, A), dev),
            }, shape=(N, n)),
            "state": Bounded(*box, (N, layout.state_size), device=dev),
        }, shape=(N,))
        self.full_action_spec = Composite({"agents": Composite(
            {"action": Categorical(A, shape=(N, n), dtype=torch.long, device=dev)}, shape=(N, n))}, shape=(N,))
        self.full_reward_spec = Composite({"agents": Composite(
            {"reward": Unbounded((N, n, 1), device=dev)}, shape=(N, n))}, shape=(N,))
        self.full_done_spec = Composite({**_done_spec((N,), dev),
                                         "agents": Composite(_done_spec((N, n), dev), shape=(N, n))}, shape=(N,))

    def tokens(self) -> torch.Tensor:
        """The chosen tokens ``(N, T)`` (-1 where not chosen yet)."""
        return self._tokens[:, :-1].clone()

    def _observe(self, done: torch.Tensor, reward: torch.Tensor | None) -> TensorDictBase:
        N, n = self.num_envs, len(self.layout.agents)
        tokens = self._tokens[:, :-1]
        slot = torch.where(tokens >= 0, self._offsets[:-1] + tokens, self._offsets[-1])
        chosen = torch.zeros(N, self.layout.onehot_size + 1, device=self.device).scatter_(1, slot, 1.0)[:, :-1]
        observation = torch.cat([self._prefix[self._t], chosen[:, None, :] * self._visible], dim=-1)
        mask = self._mask[self._t]
        self.full_action_spec["agents", "action"].update_mask(mask)
        agents_done = done[:, None, :].expand(N, n, 1)
        group = {"observation": TensorDict({"observation": observation}, batch_size=(N, n), device=self.device),
                 "action_mask": mask, "done": agents_done, "terminated": agents_done, "truncated": self._agents_false}
        if reward is not None:
            group["reward"] = reward[:, None, None].expand(N, n, 1)
        return TensorDict({"agents": TensorDict(group, batch_size=(N, n), device=self.device),
                           "state": torch.cat([self._state_prefix[self._t], chosen], dim=-1),
                           "done": done, "terminated": done, "truncated": self._false},
                          batch_size=(N,), device=self.device)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        rows = self._reset_rows(tensordict)
        if rows is None:
            self._tokens.fill_(-1)
            self._t.zero_()
        else:
            self._tokens[rows] = -1
            self._t[rows] = 0
        return self._observe(self._t[:, None] >= self.layout.steps, None)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get(("agents", "action"))
        if (self._t >= self.layout.steps).any():
            raise UserError("step() on a finished episode; reset it first (or roll out with auto-reset)")
        column, size = self._column[self._t], self._size[self._t]
        active = column < self.layout.joint.size
        bad = active & ((action < 0) | (action >= size))
        if bad.any():
            row, agent = (int(v[0]) for v in torch.nonzero(bad, as_tuple=True))
            name = self.layout.token_name(int(column[row, agent]))
            raise UserError(f"env {row}: agent {self.layout.agents[agent]!r}: {name} = {int(action[row, agent])} is "
                             f"out of range; valid values are 0..{int(size[row, agent]) - 1} (see the action mask)")
        self._tokens.scatter_(1, column, torch.where(active, action, 0))
        self._t += 1
        done = self._t == self.layout.steps
        reward = torch.zeros(self.num_envs, device=self.device)
        if done.any():
            reward[done] = self._reward(self._tokens[done, :-1])
        return self._observe(done[:, None], reward)


class JointTableEnv(_TableEnvBase):
    """The one-step joint view, batched: one group per agent (see the module docstring)."""

    def __init__(self, layout: JointLayout, descriptor: Any, num_envs: int, rewards: RewardTable,
                 device: str | torch.device = "cpu", seed: int | None = None) -> None:
        super().__init__(num_envs, rewards, device, seed)
        self.layout = layout
        dev, N = self.device, self.num_envs
        descriptor = torch.as_tensor(np.asarray(descriptor, dtype=np.float32), device=dev)
        self._observation = descriptor.expand(N, 1, -1)
        self._true = torch.ones(N, 1, dtype=torch.bool, device=dev)
        self._false = torch.zeros(N, 1, dtype=torch.bool, device=dev)
        d = len(descriptor)
        self.full_observation_spec = Composite({a: Composite(
            {"observation": Bounded(-OBS_BOUND, OBS_BOUND, (N, 1, d), device=dev)}, shape=(N, 1))
            for a in layout.agents}, shape=(N,))
        self.full_action_spec = Composite({a: Composite(
            {"action": MultiCategorical(list(sizes), shape=(N, 1, len(sizes)), dtype=torch.long, device=dev)},
            shape=(N, 1)) for a, sizes in zip(layout.agents, layout.sizes)}, shape=(N,))
        self.full_reward_spec = Composite({a: Composite({"reward": Unbounded((N, 1, 1), device=dev)}, shape=(N, 1))
                                           for a in layout.agents}, shape=(N,))
        self.full_done_spec = Composite({**_done_spec((N,), dev), **{
            a: Composite(_done_spec((N, 1), dev), shape=(N, 1)) for a in layout.agents}}, shape=(N,))
        self._nvec = torch.tensor(layout.nvec, device=dev)

    def _out(self, done: torch.Tensor, reward: torch.Tensor | None) -> TensorDictBase:
        N = self.num_envs
        groups = {}
        for a in self.layout.agents:
            group = {"observation": self._observation, "done": done[:, None], "terminated": done[:, None],
                     "truncated": self._false[:, None]}
            if reward is not None:
                group["reward"] = reward[:, None, None]
            groups[a] = TensorDict(group, batch_size=(N, 1), device=self.device)
        return TensorDict({**groups, "done": done, "terminated": done, "truncated": self._false},
                          batch_size=(N,), device=self.device)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        return self._out(self._false, None)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        tokens = torch.cat([tensordict.get((a, "action")).reshape(self.num_envs, -1) for a in self.layout.agents], -1)
        bad = (tokens < 0) | (tokens >= self._nvec)
        if bad.any():
            row, col = (int(v[0]) for v in torch.nonzero(bad, as_tuple=True))
            agent, k = self.layout.owner(col)
            raise UserError(f"env {row}: agent {agent!r}: token {k} = {int(tokens[row, col])} is out of range; "
                             f"valid values are 0..{int(self._nvec[col]) - 1}")
        return self._out(self._true, self._reward(tokens))


def table_env(num_envs: int, view: str = "token", env: str | Any = "ma2ml/AutoML-DigitsBench-v0",
              observe: str = "own", seed: int | None = None, device: str | torch.device = "cpu",
              **kwargs: Any) -> TokenTableEnv | JointTableEnv:
    """A batched TorchRL env of ``num_envs`` games of a table env (an id made with ``kwargs``, e.g.
    ``table_seed=0``, or a pipeline env you built); ``view``: ``"token"`` or ``"joint"``;
    ``observe``: the token view's ``"own"``/``"all"`` (:mod:`ma2ml.envs.token_v0`)."""
    if view not in VIEWS:
        raise UserError(f"view must be one of {list(VIEWS)}, got {view!r}")
    if isinstance(env, str):
        from ma2ml.envs.registration import make_parallel

        env = make_parallel(env, **kwargs)
    elif kwargs:
        raise UserError(f"arguments {sorted(kwargs)} are for an env id; this env is already built")
    rewards = RewardTable.of(env)
    if view == "joint":
        return JointTableEnv(JointLayout.of(env), env.state(), num_envs, rewards, device=device, seed=seed)
    return TokenTableEnv(TokenLayout.of(env, observe), env.state(), num_envs, rewards, device=device, seed=seed)
