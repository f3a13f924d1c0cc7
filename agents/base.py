"""The learner interface: ask for joint actions, tell their rewards, learn on an env.

Every learner (MA2ML and its variants, the single-agent baselines) is a :class:`Learner`
built from an env's spaces alone (``possible_agents``, ``action_space(agent).nvec``,
``state()``), so it runs on any registered ma2ml env without code changes:

    learner = make_learner("ma2ml", env, seed=0)          # from ma2ml.agents
    batches = learner.learn(env, budget=64, batch_size=8)

* ``ask(n)`` returns ``n`` joint actions, each a dict agent -> int64 token vector;
* ``tell(actions, rewards, records)`` hands back their rewards (and evaluation records);
* ``learn(env, budget, batch_size, callback)`` is the shared loop (a template method, as in
  SB3's ``BaseAlgorithm``): per batch, ask -> ``env.evaluate_batch`` (through
  :class:`ma2ml.envs.vector.VectorAutoML`) -> ``env.reward`` -> tell -> callback, until the
  learner has been told ``budget`` evaluations in all (the last batch is truncated). The
  budget counts evaluations told before a resume, so a restored learner finishes the run.
* ``state_dict()`` / ``load_state_dict()`` hold everything a resumed run needs to continue
  identically (networks, optimizers, buffers, generator states, counters). Like torch's,
  ``state_dict()`` returns live references: snapshot it with ``torch.save`` or ``deepcopy``.

Subclasses implement ``_ask`` and ``_tell``; ``ask``/``tell`` validate the arguments once and
run them with one torch thread (:mod:`ma2ml.envs.core.threads`: the thread policy).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import Actions, EvalRecord
from ma2ml.envs.core.threads import LEARNER_THREADS, torch_threads


@dataclass
class LearnerConfig:
    """Base of every learner's config dataclass (fields are documented where declared)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise one ``ValueError`` naming a bad field; subclasses extend it."""

    def _require(self, name: str, ok: bool, valid: str) -> None:
        if not ok:
            raise ValueError(f"{type(self).__name__}.{name} = {getattr(self, name)!r} is invalid; "
                             f"valid values are {valid}")


@dataclass
class Batch:
    """One evaluated batch, as :meth:`Learner.learn` hands it to its callback."""

    index: int
    """Batch number (0-based, counting batches told before a resume)."""
    start: int
    """Index of the batch's first evaluation in the whole run."""
    actions: list[dict[str, np.ndarray]]
    """The joint actions, agent -> tokens."""
    rewards: list[float]
    """Their rewards (``env.reward`` of each record)."""
    records: list[EvalRecord]
    """Their evaluation records."""


Callback = Callable[[Batch], "bool | None"]
"""Called after each batch; returning ``False`` stops :meth:`Learner.learn`."""


class Learner(ABC):
    """Base class of all learners (see the module docstring)."""

    config_class: ClassVar[type[LearnerConfig]] = LearnerConfig
    """The config dataclass this learner takes."""

    def __init__(self, env: AutoMLEnv, config: LearnerConfig | None = None, seed: int = 0) -> None:
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            raise ValueError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.seed = int(seed)
        self.layout = JointLayout.of(env)
        """Where each agent's tokens sit in a joint row (:class:`~ma2ml.envs.core.layout.JointLayout`)."""
        self.agents: list[str] = list(self.layout.agents)
        self.nvec = {a: self.layout.nvec[self.layout.slices[a]] for a in self.agents}
        self.joint_nvec = self.layout.nvec
        self.slices = self.layout.slices
        self.state = np.asarray(env.state(), dtype=np.float32)
        self.rng = np.random.default_rng(self.seed)
        self.num_asked = 0
        self.num_evaluations = 0
        self.num_batches = 0

    # -- the interface ---------------------------------------------------------------------------
    def ask(self, n: int) -> list[dict[str, np.ndarray]]:
        """``n`` joint actions to evaluate next."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"ask(n) needs a positive integer n, got {n!r}")
        with torch_threads(LEARNER_THREADS):  # small tensors: torch's thread pool only spin-waits
            actions = self._ask(int(n))
        self.num_asked += len(actions)
        return actions

    def tell(self, actions: Sequence[Actions], rewards: Sequence[float],
             records: Sequence[EvalRecord] | None = None) -> None:
        """Hand back the rewards (and records) of evaluated joint actions, in order."""
        if len(actions) != len(rewards) or (records is not None and len(records) != len(actions)):
            raise ValueError(f"tell() got {len(actions)} actions, {len(rewards)} rewards and "
                             f"{'no' if records is None else len(records)} records; the counts must match")
        if not actions:
            raise ValueError("tell() needs at least one evaluated action")
        rewards = [float(r) for r in rewards]
        if not np.all(np.isfinite(rewards)):
            raise ValueError(f"tell() got non-finite rewards {rewards}")
        with torch_threads(LEARNER_THREADS):
            self._tell(self.joint(actions), np.asarray(rewards, dtype=np.float64), records)
        self.num_evaluations += len(actions)
        self.num_batches += 1

    def learn(self, env: AutoMLEnv, budget: int, batch_size: int, callback: Callback | None = None) -> list[Batch]:
        """Ask, evaluate, tell in batches until ``budget`` evaluations in all; returns this call's batches."""
        from ma2ml.envs.vector import VectorAutoML

        for name, value in (("budget", budget), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.check_env(env)
        vec = VectorAutoML(env)
        batches: list[Batch] = []
        while self.num_evaluations < budget:
            actions = self.ask(min(batch_size, budget - self.num_evaluations))
            rewards, records = vec.step(actions)
            batch = Batch(self.num_batches, self.num_evaluations, actions, rewards.tolist(), records)
            self.tell(actions, batch.rewards, records)
            batches.append(batch)
            if callback is not None and callback(batch) is False:
                break
        return batches

    def close(self) -> None:
        """Release threads or other resources (a no-op for most learners)."""

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs; subclasses extend it (cooperatively, via ``super()``)."""
        return {
            "learner": type(self).__name__,
            "config": asdict(self.config),
            "seed": self.seed,
            "num_asked": self.num_asked,
            "num_evaluations": self.num_evaluations,
            "num_batches": self.num_batches,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output into a learner built for the same env and config."""
        self.check_checkpoint(state)
        self.seed = int(state["seed"])
        self.num_asked = int(state["num_asked"])
        self.num_evaluations = int(state["num_evaluations"])
        self.num_batches = int(state["num_batches"])
        self.rng.bit_generator.state = state["rng"]

    def check_checkpoint(self, state: dict[str, Any]) -> None:
        """``ValueError`` unless ``state`` was written by this kind of learner with this config."""
        if state.get("learner") != type(self).__name__:
            raise ValueError(f"this checkpoint is of {state.get('learner')!r}, not {type(self).__name__!r}")
        if state["config"] != asdict(self.config):
            raise ValueError(f"checkpoint config {state['config']} differs from this learner's {asdict(self.config)}")

    # -- helpers for subclasses ------------------------------------------------------------------
    def check_env(self, env: AutoMLEnv) -> None:
        """``ValueError`` unless ``env`` is an :class:`~ma2ml.envs.core.protocol.AutoMLEnv` with this
        learner's agents and token layout."""
        if not isinstance(env, AutoMLEnv):
            missing = [m for m in ("possible_agents", "action_space", "state", "evaluate_batch", "reward")
                       if not hasattr(env, m)]
            raise ValueError(f"learners need an ma2ml env (the AutoMLEnv protocol); {type(env).__name__} lacks "
                             f"{missing}: make one with pettingzoo.make('parallel', 'ma2ml/...')")
        agents = list(env.possible_agents)
        nvec = {a: np.asarray(env.action_space(a).nvec).tolist() for a in agents}
        if agents != self.agents or nvec != {a: v.tolist() for a, v in self.nvec.items()}:
            raise ValueError(f"this learner was built for agents {self.agents} with token sizes "
                             f"{ {a: v.tolist() for a, v in self.nvec.items()} }, the env has {agents} with {nvec}")

    def joint(self, actions: Sequence[Actions]) -> np.ndarray:
        """Joint actions -> an int64 array (n, total tokens), agents in ``self.agents`` order."""
        rows = self.layout.join_rows(actions)
        if np.any(rows < 0) or np.any(rows >= self.joint_nvec):
            bad = rows[np.any((rows < 0) | (rows >= self.joint_nvec), axis=1)][0]
            raise ValueError(f"joint action {bad.tolist()} does not fit the token sizes {self.joint_nvec.tolist()}")
        return rows

    def split(self, joint: np.ndarray) -> list[dict[str, np.ndarray]]:
        """An int array (n, total tokens) -> joint actions, agent -> tokens."""
        return self.layout.split_rows(np.asarray(joint, dtype=np.int64))

    # -- what each learner implements -----------------------------------------------------------
    @abstractmethod
    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        """``n`` joint actions."""

    @abstractmethod
    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        """Learn from evaluated joint actions (``joint``: int64 (n, total tokens))."""
