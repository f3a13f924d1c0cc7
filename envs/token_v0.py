"""# Token AutoML (v0)

The token-level view of any ma2ml env: the same cooperative AutoML game, but each agent
emits its module's decision tokens **one per step**, each a single ``Discrete`` action, as
the autoregressive controller does. This is the shape that standard MARL algorithms (MAPPO,
IPPO, QMIX, ... with one categorical action per agent and step) consume. The pipeline is
evaluated by the wrapped env after the last token; the shared reward comes then.

| Import             | `from ma2ml.envs import token_v0` (or `token_env(parallel_env)`) |
|--------------------|---------------------------------------------------------------|
| Actions            | Discrete, with an action mask                                 |
| Parallel API       | Yes (AEC through `parallel_to_aec`)                           |
| Manual control     | No                                                            |
| Agents             | the wrapped env's (`["aug", "nas", "hpo"]` by default)        |
| Action shape       | `Discrete(A)`, A = the largest number of choices of any token  |
| Observation shape  | `Dict(observation=Box((D,)), action_mask=Box(0, 1, (A,), int8))` |
| Episode length     | L = the most tokens any agent has (4 on DigitsBench)          |
| Registered ids     | `ma2ml/TokenAutoML-<family>-v0` for every family: `-Digits-`, `-CIFAR10-`, `-CIFAR100-`, `-DigitsBench-` (table), `-DigitsHard-` (hard table), `-ImageNet-` |

## Why simultaneous steps (and not turns)

At step t every agent emits its t-th token at once; an agent whose tokens are all chosen
emits a no-op until the others finish (its mask offers action 0 only, and whatever it sends
is ignored). We chose this over agents taking turns because (1) it keeps the parallel
game's semantics: no agent sees what another picks in the same step, and no order between
AUG, NAS and HPO is invented (the poster has none); (2) the episode is L = max_i T_i steps
long rather than sum_i T_i, with every agent acting at every step, which is what MAPPO- and
IPPO-style learners and TorchRL's grouped tensors (``[batch, n_agents]``) expect; (3) one
common action size A (tokens with fewer choices are masked) lets agents share parameters.

## Agents, actions and masks

Agent i's token t (t < T_i) has n_{i,t} choices: actions 0..n_{i,t}-1 are legal and the mask
has ones there. A masked-out action is one ``ValueError`` naming the agent, the token and
its valid range (``illegal_action="raise"``, the default), or, with
``illegal_action="terminate"``, ends the episode at once with reward 0 for every agent and
``infos[agent] = {"status": "illegal", "error": ..., "reward": 0.0}``, nothing evaluated
(PettingZoo's ``TerminateIllegalWrapper`` semantics, for libraries that ignore masks). An
action outside ``Discrete(A)`` (not an integer, or out of 0..A-1) is always a ``ValueError``.

## Observations and state

``observation`` (float32, D = d + L + n + sum of all token sizes) is the concatenation of
the task descriptor S of the wrapped env (d = 6), a one-hot of the step t (all zeros once
the episode is over), a one-hot of the agent, and one-hot encodings of the tokens chosen so
far, in the joint layout's order. With ``observe="own"`` (the default) an agent sees only
its own earlier tokens, others' blocks stay zero: each agent's policy is then
pi_i(a_{i,t} | S, a_{i,<t}), the decentralized, autoregressive policy of MA2ML, and
coordination must come from learning (a centralized critic reads ``state()``). With
``observe="all"`` every agent sees every token chosen at earlier steps (its own and the
others'). ``state()`` (d + L + sum of token sizes) is S, the step one-hot and every chosen
token, for centralized critics; ``state_space`` is its Box.

## Episode, reward and infos

L steps. Rewards are 0 before the last step; after it the wrapped env evaluates the
pipeline (its ``step``: same evaluator, store, executor, seeds) and every agent gets its
shared reward R = Acc_val * (FLOPs / C) ** w. All agents terminate together after step L
(no agent leaves early, so none misses the reward). ``infos`` are empty before the last
step; after it they are the wrapped env's (the evaluation record without wall-clock
timings, see :mod:`ma2ml.envs.automl_v0`), so identically seeded runs have equal infos.

## Arguments

    parallel_env(env="ma2ml/AutoML-DigitsBench-v0", observe="own", illegal_action="raise", **kwargs)
    token_env(parallel_env, observe="own", illegal_action="raise")

* `env`: a registered pipeline env id (``ma2ml.envs.env_ids()``); ``kwargs`` go to it
  (e.g. ``table_seed=0``, ``epochs=1``, ``store=...``).
* `observe`: ``"own"`` or ``"all"`` (above).
* `illegal_action`: ``"raise"`` or ``"terminate"`` (above).
* `token_env` wraps an env you built (any ma2ml parallel env: ``MultiDiscrete`` token
  spaces and a ``state()``); the token env closes it in ``close()``.

## Version history

* v0: initial release.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces as gym_spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

from ma2ml.envs.automl_v0 import OBS_BOUND
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.layout import JointLayout

OBSERVE = ("own", "all")
"""Valid ``observe`` values."""
ILLEGAL_ACTIONS = ("raise", "terminate")
"""Valid ``illegal_action`` values."""


@dataclass(frozen=True)
class TokenLayout:
    """The token-level schedule of a joint layout: who emits which token at which step, the
    masks, and the observation encoding (the one definition the PettingZoo env and the
    batched TorchRL env both use; their agreement is tested)."""

    joint: JointLayout
    """The agents and their token sizes."""
    descriptor_size: int
    """d, the length of the task descriptor S."""
    observe: str = "own"
    """``"own"``: an agent observes its own earlier tokens; ``"all"``: every earlier token."""
    steps: int = field(init=False)
    """L, the episode length: the most tokens of any agent."""
    actions: int = field(init=False)
    """A, the common action size: the most choices of any token."""
    column: np.ndarray = field(init=False, repr=False)
    """Joint column agent i fills at step t, ``(L, n)``; -1 for a no-op."""
    size: np.ndarray = field(init=False, repr=False)
    """Choices of that token, ``(L, n)``; 1 for a no-op."""
    mask: np.ndarray = field(init=False, repr=False)
    """Action masks ``(L + 1, n, A)`` int8: row t for step t, row L (no-op) after the last step."""
    offsets: np.ndarray = field(init=False, repr=False)
    """Start of each joint column's one-hot block, ``(T,)``."""
    visible: np.ndarray = field(init=False, repr=False)
    """Which one-hot entries agent i observes, ``(n, sum of token sizes)`` bool."""

    def __post_init__(self) -> None:
        if self.observe not in OBSERVE:
            raise UserError(f"observe must be one of {list(OBSERVE)}, got {self.observe!r}")
        n, lengths = len(self.joint.agents), [len(s) for s in self.joint.sizes]
        steps, actions = max(lengths), int(self.joint.nvec.max())
        column = np.full((steps, n), -1, dtype=np.int64)
        size = np.ones((steps, n), dtype=np.int64)
        for i, agent in enumerate(self.joint.agents):
            start = self.joint.slices[agent].start
            column[:lengths[i], i] = np.arange(start, start + lengths[i])
            size[:lengths[i], i] = self.joint.sizes[i]
        mask = np.zeros((steps + 1, n, actions), dtype=np.int8)
        mask[:steps] = np.arange(actions) < size[..., None]
        mask[steps, :, 0] = 1
        offsets = np.concatenate([[0], np.cumsum(self.joint.nvec)[:-1]]).astype(np.int64)
        owner = np.repeat(np.arange(n), [sum(s) for s in self.joint.sizes])
        visible = np.ones((n, int(self.joint.nvec.sum())), dtype=bool) if self.observe == "all" \
            else owner[None, :] == np.arange(n)[:, None]
        for name, value in (("steps", steps), ("actions", actions), ("column", column), ("size", size),
                            ("mask", mask), ("offsets", offsets), ("visible", visible)):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, env: Any, observe: str = "own") -> TokenLayout:
        """The token layout of a pipeline env (its agents, ``MultiDiscrete`` token spaces and ``state()``)."""
        spaces = getattr(env, "spaces", None)
        joint = JointLayout.of_spaces(spaces) if spaces is not None and list(spaces) == list(env.possible_agents) \
            else JointLayout.of(env)
        return cls(joint, int(np.asarray(env.state()).size), observe)

    @property
    def agents(self) -> tuple[str, ...]:
        return self.joint.agents

    @property
    def onehot_size(self) -> int:
        """Length of the chosen-tokens block: the sum of all token sizes."""
        return int(self.joint.nvec.sum())

    @property
    def observation_size(self) -> int:
        """D = d + L + n + sum of token sizes."""
        return self.descriptor_size + self.steps + len(self.agents) + self.onehot_size

    @property
    def state_size(self) -> int:
        """d + L + sum of token sizes."""
        return self.descriptor_size + self.steps + self.onehot_size

    def chosen(self, tokens: np.ndarray) -> np.ndarray:
        """One-hot of the chosen tokens (``tokens`` (T,) int, -1 where not chosen), float32."""
        out = np.zeros(self.onehot_size, dtype=np.float32)
        picked = tokens >= 0
        out[self.offsets[picked] + tokens[picked]] = 1.0
        return out

    def _step_onehot(self, t: int) -> np.ndarray:
        return np.eye(self.steps, dtype=np.float32)[t] if t < self.steps else np.zeros(self.steps, np.float32)

    def observation(self, descriptor: np.ndarray, tokens: np.ndarray, t: int, agent: int) -> np.ndarray:
        """Agent ``agent``'s observation at step ``t`` (``t == L``: after the last step)."""
        return np.concatenate([descriptor, self._step_onehot(t), np.eye(len(self.agents), dtype=np.float32)[agent],
                               self.chosen(tokens) * self.visible[agent]]).astype(np.float32)

    def state(self, descriptor: np.ndarray, tokens: np.ndarray, t: int) -> np.ndarray:
        """The global state at step ``t``: S, the step one-hot and every chosen token."""
        return np.concatenate([descriptor, self._step_onehot(t), self.chosen(tokens)]).astype(np.float32)

    def token_name(self, column: int) -> str:
        """``"token k (name)"`` of a joint column, for error messages."""
        agent, k = self.joint.owner(column)
        name = self.joint.tokens[column][0] if self.joint.tokens is not None else None
        return f"token {k} ({name})" if name else f"token {k}"


def _integer(value: Any) -> int | None:
    """``value`` as an int if it is one action (an integer or integral float, or a 0-d array of one)."""
    if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


class TokenAutoMLEnv(ParallelEnv):
    """The token-level view of a pipeline env (see the module docstring)."""

    metadata = {"name": "token_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, env: Any, observe: str = "own", illegal_action: str = "raise",
                 render_mode: str | None = None) -> None:
        if render_mode is not None:
            raise UserError(f"render_mode {render_mode!r} is not supported; this env does not render")
        if illegal_action not in ILLEGAL_ACTIONS:
            raise UserError(f"illegal_action must be one of {list(ILLEGAL_ACTIONS)}, got {illegal_action!r}")
        bad = [a for a in env.possible_agents if not isinstance(env.action_space(a), gym_spaces.MultiDiscrete)]
        if bad:
            raise UserError(f"token_env wraps envs whose agents emit MultiDiscrete token vectors; {bad} do not")
        self.env = env
        """The wrapped pipeline env (it evaluates the pipeline after the last token)."""
        self.layout = TokenLayout.of(env, observe)
        self.illegal_action = illegal_action
        self.render_mode = render_mode
        self.possible_agents = list(self.layout.agents)
        self.agents: list[str] = []
        self.descriptor = np.asarray(env.state(), dtype=np.float32)
        """The task descriptor S of the wrapped env."""
        a, d = self.layout.actions, self.layout.observation_size
        self._action_spaces = {agent: gym_spaces.Discrete(a) for agent in self.possible_agents}
        self._obs_spaces = {agent: gym_spaces.Dict({
            "observation": gym_spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(d,), dtype=np.float32),
            "action_mask": gym_spaces.Box(0, 1, shape=(a,), dtype=np.int8),
        }) for agent in self.possible_agents}
        self.state_space = gym_spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(self.layout.state_size,), dtype=np.float32)
        """The space of :meth:`state`."""
        self._tokens = np.full(self.layout.joint.size, -1, dtype=np.int64)
        self._t = 0

    # -- spaces ---------------------------------------------------------------------------------
    def observation_space(self, agent: str) -> gym_spaces.Dict:
        self._check_agent(agent)
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gym_spaces.Discrete:
        self._check_agent(agent)
        return self._action_spaces[agent]

    def _check_agent(self, agent: str) -> None:
        if agent not in self._action_spaces:
            raise UserError(f"unknown agent {agent!r}; this env's agents are {self.possible_agents}")

    # -- the game -------------------------------------------------------------------------------
    @property
    def last_record(self) -> Any:
        """The wrapped env's record of the last evaluated pipeline."""
        return self.env.last_record

    def tokens(self) -> dict[str, np.ndarray]:
        """The tokens chosen so far, agent -> int64 vector (-1 where not chosen yet)."""
        return self.layout.joint.split(self._tokens)

    def state(self) -> np.ndarray:
        return self.layout.state(self.descriptor, self._tokens, self._t)

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        return {a: {"observation": self.layout.observation(self.descriptor, self._tokens, self._t, i),
                    "action_mask": self.layout.mask[self._t, i].copy()}
                for i, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.env.reset(seed=seed, options=options)
        if seed is not None:
            for i, agent in enumerate(self.possible_agents):
                self._action_spaces[agent].seed(seed + i)
                self._obs_spaces[agent].seed(seed + i)
            self.state_space.seed(seed)
        self._tokens = np.full(self.layout.joint.size, -1, dtype=np.int64)
        self._t = 0
        self.agents = list(self.possible_agents)
        return self._observations(), {a: {} for a in self.agents}

    def _read(self, actions: Any) -> np.ndarray | str:
        """The step's actions as an int64 ``(n,)`` array, or the message of a masked-out one;
        ``ValueError`` for a wrong agent set or an action outside ``Discrete(A)``."""
        if not isinstance(actions, dict) or set(actions) != set(self.agents):
            given = sorted(actions) if isinstance(actions, dict) else type(actions).__name__
            raise UserError(f"step() needs one action for each agent; got {given}, this env's agents are "
                             f"{self.possible_agents}")
        values = np.zeros(len(self.possible_agents), dtype=np.int64)
        for i, agent in enumerate(self.possible_agents):
            value = _integer(actions[agent])
            if value is None or not 0 <= value < self.layout.actions:
                raise UserError(f"agent {agent!r}: action {actions[agent]!r} is not in "
                                 f"Discrete({self.layout.actions}); actions are integers 0..{self.layout.actions - 1}")
            column, size = int(self.layout.column[self._t, i]), int(self.layout.size[self._t, i])
            if column >= 0 and value >= size:
                return (f"agent {agent!r}: {self.layout.token_name(column)} = {value} is out of range; "
                        f"valid values are 0..{size - 1} (see the action mask)")
            values[i] = value
        return values

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise UserError("step() called on a finished episode; call reset() first")
        values = self._read(actions)
        agents = list(self.agents)
        if isinstance(values, str):
            if self.illegal_action == "raise":
                raise UserError(values)
            self.agents = []
            info = {"status": "illegal", "error": values, "reward": 0.0}
            return (self._observations(), {a: 0.0 for a in agents}, {a: True for a in agents},
                    {a: False for a in agents}, {a: dict(info) for a in agents})
        filled = self.layout.column[self._t] >= 0
        self._tokens[self.layout.column[self._t][filled]] = values[filled]
        self._t += 1
        if self._t < self.layout.steps:
            return (self._observations(), {a: 0.0 for a in agents}, {a: False for a in agents},
                    {a: False for a in agents}, {a: {} for a in agents})
        _, rewards, _, _, infos = self.env.step(self.layout.joint.split(self._tokens))
        self.agents = []
        return (self._observations(), {a: float(rewards[a]) for a in agents}, {a: True for a in agents},
                {a: False for a in agents}, {a: infos[a] for a in agents})

    def close(self) -> None:
        self.env.close()


def token_env(env: Any, observe: str = "own", illegal_action: str = "raise") -> TokenAutoMLEnv:
    """The token-level view of a pipeline env you built (see the module docstring)."""
    return TokenAutoMLEnv(env, observe=observe, illegal_action=illegal_action)


def parallel_env(env: str = "ma2ml/AutoML-DigitsBench-v0", observe: str = "own", illegal_action: str = "raise",
                 render_mode: str | None = None, **kwargs: Any) -> TokenAutoMLEnv:
    """``ma2ml/TokenAutoML-<family>-v0``: the token view of registered env ``env`` made with ``kwargs``."""
    from ma2ml.envs.registration import make_parallel

    return TokenAutoMLEnv(make_parallel(env, **kwargs), observe=observe, illegal_action=illegal_action,
                          render_mode=render_mode)


def raw_env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's order-enforcing wrapper."""
    return OrderEnforcingWrapper(raw_env(**kwargs))
