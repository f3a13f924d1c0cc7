"""Stable-Baselines3 PPO and A2C as ask/tell learners on the joint view.

Real SB3: the model is ``stable_baselines3.PPO`` / ``A2C`` with an ``MlpPolicy`` on
:class:`ma2ml.baselines.vec_env.AutoMLVecEnv` (``num_envs`` = the size of the first ``ask``, i.e.
the batch size; the action is the concatenation of all agents' tokens, the observation S).
SB3 drives its own loop, so its ``learn`` runs in a worker thread as a coroutine of the
learner: the VecEnv's ``step_wait`` hands SB3's ``num_envs`` actions to :meth:`ask` and
blocks until :meth:`tell` has returned all their rewards. Exactly one side runs at a time
(``tell`` waits until SB3 has produced its next actions), and the process-wide random
states (``random``, ``numpy.random``, torch's CPU generator) that SB3 seeds and draws from
are swapped at every hand-over, so SB3 neither disturbs the caller's global RNG nor is
disturbed by it: with a seed, runs on CPU are identical. :meth:`close` ends the thread.

Episodes are one step long (every ``done`` is True), so the discount does not matter and
each return is the reward. Learning-rate schedules see ``total_timesteps = 2**40``, i.e.
stay constant. ``ask(n)`` hands out the current SB3 step's actions; a new step begins only
once all ``num_envs`` actions of the previous one are told, so ``n`` may not exceed what is
left of the step (a final, truncated batch is fine: its unused actions are never told).

The no-repeat protocol (:mod:`ma2ml.agents.base`) is kept inside SB3's loop, since SB3 must
see a reward for every action it took: an action of a step that repeats an evaluated
pipeline (or an earlier action of the same step) is answered with the known reward and is
not handed to :meth:`ask`, so it is not charged to the budget; only the step's new, distinct
pipelines are (``ask(n)`` may then return fewer than ``n``). A step with nothing new is
answered at once and SB3 goes on to its next step; after :data:`MAX_FREE_STEPS` such steps in a
row (a policy collapsed onto evaluated pipelines) a batch of uniform unseen pipelines is
evaluated instead, as the base protocol does for other learners (their rewards reach SB3 only
if its policy later proposes them). The protocol is fixed at the first ``ask``.

Checkpoints replay: ``state_dict`` keeps every ask and every told reward; ``load_state_dict``
on a fresh learner re-runs them through a new SB3 model with the same seed, which rebuilds
the same policy, optimizer and rollout-buffer state (checked action by action).
"""
from __future__ import annotations

import queue
import random
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.fields import Annotated, Length, Range
from ma2ml.agents.base import Learner, LearnerConfig
from ma2ml.baselines.vec_env import AutoMLVecEnv
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import EvalRecord

MAX_FREE_STEPS = 50
"""Consecutive SB3 steps answered from memory (nothing new) before uniform unseen pipelines fill in."""

_STOP = object()
"""Sent to the worker by :meth:`SB3Learner.close`."""


class _Stopped(Exception):
    """Raised inside SB3's rollout to unwind the worker thread."""


@dataclass
class SB3Config(LearnerConfig):
    """Settings shared by the SB3 learners."""

    learning_rate: Annotated[float, Range(0, 10, low_open=True)] = 1e-3
    """Adam learning rate of the SB3 policy (constant)."""
    n_steps: Annotated[int, Range(1, 10_000)] = 1
    """Batches per rollout: SB3 updates after n_steps * batch size evaluations."""
    ent_coef: Annotated[float, Range(0, 100)] = 0.01
    """Entropy bonus."""
    net_arch: Annotated[tuple[int, ...], Range(1, 1024), Length(0, 16)] = (64, 64)
    """Hidden layers of the MLP policy and value networks."""
    device: str = "cpu"
    """Torch device of the SB3 model (CPU keeps runs deterministic)."""

    def validate(self) -> None:
        self._require("device", self.device in ("cpu", "auto") or re.fullmatch(r"cuda(:\d{1,3})?", self.device) is not None,
                      "'cpu', 'auto', 'cuda' or 'cuda:N'")

    def algorithm_kwargs(self, num_envs: int) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "n_steps": self.n_steps, "ent_coef": self.ent_coef,
                "policy_kwargs": {"net_arch": list(self.net_arch)}, "device": self.device}


@dataclass
class PPOConfig(SB3Config):
    """SB3 PPO on the joint view."""

    learning_rate: Annotated[float, Range(0, 10, low_open=True)] = 3e-4
    """Adam learning rate of the SB3 policy (constant; tuned: ``ma2ml/tuned/ppo.json``; 1e-3 before)."""
    n_steps: Annotated[int, Range(1, 10_000)] = 2
    """Batches per rollout: PPO updates after n_steps * batch size evaluations."""
    ent_coef: Annotated[float, Range(0, 100)] = 0.05
    """Entropy bonus (tuned; 0.01 before)."""
    n_epochs: Annotated[int, Range(1, 1000)] = 10
    """Passes over each rollout."""
    batch_size: Annotated[int | None, Range(1, 1_000_000)] = None
    """PPO mini-batch size; None: the whole rollout (n_steps * batch size)."""
    clip_range: Annotated[float, Range(0, 10, low_open=True)] = 0.2
    """PPO's ratio clipping."""

    def validate(self) -> None:
        super().validate()

    def algorithm_kwargs(self, num_envs: int) -> dict[str, Any]:
        return {**super().algorithm_kwargs(num_envs), "n_epochs": self.n_epochs, "clip_range": self.clip_range,
                "batch_size": self.batch_size or self.n_steps * num_envs}


@dataclass
class A2CConfig(SB3Config):
    """SB3 A2C on the joint view (one update per n_steps batches)."""

    learning_rate: Annotated[float, Range(0, 10, low_open=True)] = 3e-4
    """Adam learning rate of the SB3 policy (constant; tuned: ``ma2ml/tuned/a2c.json``; 1e-3 before)."""


def _global_rng() -> tuple[Any, ...]:
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_global_rng(states: tuple[Any, ...]) -> None:
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


class SB3Learner(Learner):
    """An SB3 algorithm behind ask/tell (see the module docstring)."""

    algorithm: ClassVar[str] = ""
    """Name of the class in ``stable_baselines3``."""
    handles_repeats = True

    def __init__(self, env: AutoMLEnv, config: SB3Config | None = None, seed: int = 0) -> None:
        super().__init__(env, config, seed)
        self.env = env
        self.num_envs: int | None = None
        self.model: Any = None
        self._thread: threading.Thread | None = None
        self._to_learner: queue.Queue = queue.Queue(maxsize=1)
        self._to_worker: queue.Queue = queue.Queue(maxsize=1)
        self._parked: tuple[Any, ...] = ()
        self._step: list[dict[str, np.ndarray]] = []
        self._handed = 0
        self._outstanding: list[np.ndarray] = []
        self._rewards: list[float] = []
        self._log: list[tuple[str, list]] = []
        self._known: dict[bytes, float] = {}
        self._free_steps = 0

    # -- the worker side (runs in the thread) ------------------------------------------------
    def _swap_rng(self) -> None:
        current = _global_rng()
        _set_global_rng(self._parked)
        self._parked = current

    def _exchange(self, batch: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Hand ``batch`` to the learner's side and wait for its rewards."""
        self._swap_rng()
        self._to_learner.put(batch)
        rewards = self._to_worker.get()
        if rewards is _STOP:
            raise _Stopped
        self._swap_rng()
        return rewards

    def _handoff(self, batch: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The rewards of one SB3 step (the VecEnv's ``evaluate``): new pipelines are handed over,
        repeats answered from memory under the no-repeat protocol (see the module docstring)."""
        infos: list[dict[str, Any]] = [{} for _ in batch]
        if not self.no_repeat:
            return self._exchange(batch), infos
        keys = [self.row_key(row) for row in self.joint(batch)]
        first = {key: i for i, key in reversed(list(enumerate(keys)))}
        handed = [i for i, key in enumerate(keys) if key not in self._known and first[key] == i]
        if handed:
            self._free_steps = 0
            new = [batch[i] for i in handed]
        elif self._free_steps < MAX_FREE_STEPS:
            self._free_steps += 1
            new = []
        else:  # collapsed onto evaluated pipelines: a batch of uniform unseen ones, as the base protocol does
            self._free_steps = 0
            new = self.split(self.unseen_rows(len(batch)))
        if new:
            for row, reward in zip(self.joint(new), self._exchange(new), strict=True):
                self._known[self.row_key(row)] = float(reward)
        return np.asarray([self._known[key] for key in keys]), infos

    def _work(self) -> None:
        import stable_baselines3
        from stable_baselines3.common.logger import Logger

        try:
            vec = AutoMLVecEnv(self.env, self.num_envs, evaluate=self._handoff)
            self.model = getattr(stable_baselines3, self.algorithm)(
                "MlpPolicy", vec, seed=self.seed, verbose=0, **self.config.algorithm_kwargs(self.num_envs))
            # SB3's default logger makes an empty /tmp/SB3-<timestamp> folder per run; ours writes nowhere
            self.model.set_logger(Logger(folder=None, output_formats=[]))
            self.model.learn(total_timesteps=2**40)
            error: BaseException = RuntimeError(f"{self.algorithm} stopped learning (total_timesteps reached)")
        except _Stopped:
            return
        except BaseException as exc:  # handed to the learner's thread, raised there
            error = exc
        self._swap_rng()
        self._to_learner.put(error)

    # -- the learner side --------------------------------------------------------------------
    def _receive(self) -> None:
        item = self._to_learner.get()
        if isinstance(item, BaseException):
            self._thread = None
            raise RuntimeError(f"SB3 {self.algorithm} failed: {item}") from item
        self._step, self._handed = item, 0

    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        if self._thread is None:
            if self.num_envs is not None:
                raise RuntimeError(f"the SB3 {self.algorithm} worker has stopped; build a new learner")
            self.num_envs = n
            self._parked = _global_rng()
            self._thread = threading.Thread(target=self._work, name=f"sb3-{self.algorithm}", daemon=True)
            self._thread.start()
            self._receive()
        left = len(self._step) - self._handed
        if n > left and self.no_repeat and left:
            n = left  # the step's other actions repeat evaluated pipelines (answered from memory)
        elif n > left:
            raise UserError(f"ask({n}): only {left} of SB3's current step of {self.num_envs} actions are left; "
                             f"tell the outstanding ones first (num_envs is fixed by the first ask)")
        actions = self._step[self._handed:self._handed + n]
        self._handed += n
        joint = self.joint(actions)
        self._outstanding.extend(joint)
        self._log.append(("ask", joint.tolist()))
        return self.split(joint)

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        if len(joint) > len(self._outstanding) or not np.array_equal(joint, np.stack(self._outstanding[:len(joint)])):
            raise UserError(f"SB3 {self.algorithm} can only be told the actions it was asked for, in order")
        del self._outstanding[:len(joint)]
        self._rewards.extend(rewards.tolist())
        self._log.append(("tell", rewards.tolist()))
        if len(self._rewards) == len(self._step):
            self._to_worker.put(np.asarray(self._rewards))
            self._rewards = []
            self._receive()

    def close(self) -> None:
        """Stop SB3's thread (it is waiting for rewards) and wait for it to end."""
        if self._thread is not None:
            self._to_worker.put(_STOP)
            self._thread.join()
            self._thread = None

    # -- checkpoints by replay -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log": [(kind, list(values)) for kind, values in self._log]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_checkpoint(state)
        if self._log:
            raise UserError(f"load a {self.algorithm} checkpoint into a fresh learner (this one has already acted)")
        self.no_repeat = bool(state.get("no_repeat", False))  # older checkpoints ran with repeats
        pending: list[dict[str, np.ndarray]] = []
        for kind, values in state["log"]:
            if kind == "ask":
                got = self.ask(len(values))
                if not np.array_equal(self.joint(got), np.asarray(values, dtype=np.int64)):
                    raise RuntimeError(f"replaying the {self.algorithm} checkpoint gave different actions; "
                                       "it was written with another seed, device or SB3 version")
                pending.extend(got)
            else:
                self.tell(pending[:len(values)], values)
                del pending[:len(values)]
        super().load_state_dict(state)


class PPO(SB3Learner):
    """Stable-Baselines3 PPO (clipped policy gradient, GAE) on the joint view."""

    config_class = PPOConfig
    algorithm = "PPO"


class A2C(SB3Learner):
    """Stable-Baselines3 A2C (synchronous advantage actor-critic) on the joint view."""

    config_class = A2CConfig
    algorithm = "A2C"
