"""The learner interface: ask for joint actions, tell their rewards, learn on an env.

Every learner (MA2ML and its variants, the single-agent baselines) is a :class:`Learner`
built from an env's spaces alone (``possible_agents``, ``action_space(agent).nvec``,
``state()``), so it runs on any registered ma2ml env without code changes:

    learner = make_learner("ma2ml", env, seed=0)          # from ma2ml.agents
    batches = learner.learn(env, budget=64, batch_size=8)

* ``ask(n)`` returns ``n`` joint actions, each a dict agent -> int64 token vector;
* ``tell(actions, rewards, records)`` hands back their rewards (and evaluation records);
* ``learn(env, budget, batch_size, callback, no_repeat=None)`` is the shared loop (a template
  method, as in SB3's ``BaseAlgorithm``): per batch, ask -> ``env.evaluate_batch`` (through
  :class:`ma2ml.envs.vector.VectorAutoML`) -> ``env.reward`` -> tell -> callback, until the
  learner has been told ``budget`` evaluations in all (the last batch is truncated). The
  budget counts evaluations told before a resume, so a restored learner finishes the run.

**The no-repeat protocol** (``no_repeat``, on by default; ``learn(..., no_repeat=False)`` or
``--allow-repeats`` turns it off): within one run a learner proposes pipelines that are
distinct and not yet asked or told, as far as the space allows, so every learner spends its
budget on new pipelines and comparisons are fair. The base :meth:`Learner.ask` enforces it
for learners that do not handle it themselves (``handles_repeats = False``): proposals that
repeat an earlier pipeline, or one earlier in the same batch, are replaced by calling
``_ask`` again (up to :data:`RESAMPLE_ROUNDS` rounds: policy learners resample, evolution
breeds again, random search becomes sampling without replacement), then by uniform unseen
pipelines drawn from the learner's generator. Once every pipeline of the space has been
seen, repeats are unavoidable and allowed. Learners with their own mechanism set
``handles_repeats = True`` (SB3's PPO/A2C and Optuna's samplers answer a repeat with its
known reward, not charged to the budget).
* ``recommend()`` names the pipeline the learner stands behind at any point (by default the best lower
  confidence bound of its observed means, so a pipeline measured several times beats one lucky draw:
  the winner's curse under seed noise); ``observations()`` lists what it was told;
* ``state_dict()`` / ``load_state_dict()`` hold everything a resumed run needs to continue
  identically (networks, optimizers, buffers, generator states, counters). Like torch's,
  ``state_dict()`` returns live references: snapshot it with ``torch.save`` or ``deepcopy``.

Subclasses implement ``_ask`` and ``_tell``; ``ask``/``tell`` validate the arguments once and
run them with one torch thread (:mod:`ma2ml.envs.core.threads`: the thread policy).
"""
from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.fields import Annotated, Range, check_fields
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import Actions, EvalRecord
from ma2ml.envs.core.threads import LEARNER_THREADS, torch_threads


@dataclass
class LearnerConfig:
    """Base of every learner's config dataclass: every field is typed and bounded in its annotation
    (:mod:`ma2ml.envs.core.fields`) and documented where declared."""

    reevaluate_share: Annotated[float, Range(0, 0.9)] = 0.0
    """Share of the budget spent at its end re-evaluating the best pipelines observed so far (each repeat
    another training on a table with seed noise), so that :meth:`Learner.recommend` stands behind a
    measured mean instead of one lucky draw; 0 (the default): none. Needs ``learn`` (which knows the
    budget); the learner's own ``_tell`` never sees these re-evaluations, only the recommendation does."""
    reevaluate_top: Annotated[int, Range(1, 1000)] = 5
    """How many of the best pipelines (by observed mean) share those re-evaluations: each batch goes to the
    ones evaluated the fewest times first (ties: the better mean)."""
    race_seeds: Annotated[int, Range(0, 64)] = 0
    """Intensification (SMAC's racing rule), for tables with seed noise: 0 (the default) off; ``k >= 2``: the
    learner keeps an incumbent, and a new pipeline whose first reward beats the incumbent's mean becomes a
    challenger that meets it on a doubling number of further evaluations (1, 2, 4, ...), dropped as soon as
    its mean falls below the incumbent's and promoted once it has as many evaluations as the incumbent (at
    most ``k``); each challenge first gives the incumbent one more evaluation while it has fewer than ``k``.
    Every race evaluation is charged to the budget and goes before the learner's own proposals in a batch;
    the learner's ``_tell`` never sees them. With it on, :meth:`Learner.recommend` is the incumbent."""

    def __post_init__(self) -> None:
        check_fields(self)
        self._require("race_seeds", self.race_seeds != 1, "0 (no racing) or 2..64")
        self.validate()

    def validate(self) -> None:
        """Rules between fields (one ``UserError`` naming a bad field); every field's own type and range are
        declared in its annotation and checked before this (:mod:`ma2ml.envs.core.fields`)."""

    def _require(self, name: str, ok: bool, valid: str) -> None:
        if not ok:
            raise UserError(f"{type(self).__name__}.{name} = {getattr(self, name)!r} is invalid; "
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


RESAMPLE_ROUNDS = 20
"""Calls of ``_ask`` that replace repeated proposals before uniform unseen pipelines fill in."""


@dataclass
class Observed:
    """What a learner was told of one pipeline (:meth:`Learner.observations`, :meth:`Learner.recommend`)."""

    row: np.ndarray
    """Its joint token row."""
    total: float = 0.0
    """Sum of its told rewards."""
    count: int = 0
    """How many times it was told."""
    squares: float = 0.0
    """Sum of the squares of its told rewards (the repeats' spread)."""

    @property
    def mean(self) -> float:
        return self.total / self.count

    def add(self, reward: float) -> None:
        self.total += reward
        self.count += 1
        self.squares += reward * reward


def pick_recommendation(totals: np.ndarray, counts: np.ndarray, squares: np.ndarray) -> int:
    """The rule of :meth:`Learner.recommend` over distinct pipelines (``totals``, ``counts``, ``squares``:
    each one's sum of observed rewards, how many, sum of squares; in the order first observed): the best
    lower confidence bound ``mean - noise / sqrt(count)``, where ``noise`` is the pooled standard deviation
    of repeated observations (0 while no pipeline was observed twice). A pipeline measured several times
    beats one lucky draw unless that draw exceeds its mean by about one noise standard deviation; a
    pipeline repeated by chance does not win on its repeats alone. Without repeats (or noise) it is the
    best observed. Ties go to the first observed. The comparison report scores runs with the same rule."""
    totals, squares = np.asarray(totals, dtype=np.float64), np.asarray(squares, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    seen = counts > 0
    means = np.where(seen, totals / np.maximum(counts, 1), -np.inf)
    repeated = counts >= 2
    dof = int((counts[repeated] - 1).sum())
    within = float(np.maximum(squares[repeated] - totals[repeated] ** 2 / counts[repeated], 0.0).sum())
    noise = math.sqrt(within / dof) if dof else 0.0
    return int(np.argmax(np.where(seen, means - noise / np.sqrt(np.maximum(counts, 1)), -np.inf)))


class Race:
    """SMAC-style intensification over a learner's observations (``LearnerConfig.race_seeds``): an
    incumbent, the challengers racing it on doubling numbers of evaluations (side by side, each waiting
    only for its own evaluations and the incumbent's), and the queue of evaluations to ask next.
    Pipelines are named by their keys (:meth:`Learner.row_key`); their rewards live in the learner's
    :class:`Observed` records, passed in as ``observed``."""

    def __init__(self, k: int) -> None:
        self.k = int(k)
        """Most evaluations a pipeline gets in a race (0: no racing)."""
        self.incumbent: bytes | None = None
        self.challengers: list[bytes] = []
        """Challengers still racing, in the order they appeared."""
        self.pending: list[bytes] = []
        """Evaluations decided but not yet asked, in order."""
        self.in_flight: dict[bytes, int] = {}
        """Evaluations asked but not yet told, per pipeline (empty between batches)."""
        self.top_up = False
        """A challenger appeared since the incumbent's last extra evaluation was decided."""

    def take(self, n: int) -> list[bytes]:
        """Up to ``n`` pending evaluations, now asked."""
        keys, self.pending = self.pending[:n], self.pending[n:]
        for key in keys:
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return keys

    def told(self, keys: Sequence[bytes]) -> None:
        """Rows told that the learner did not propose itself (race or re-evaluation rows)."""
        for key in keys:
            if self.in_flight.get(key):
                self.in_flight[key] -= 1
                if not self.in_flight[key]:
                    del self.in_flight[key]

    def offer(self, key: bytes, reward: float, observed: dict[bytes, Observed]) -> None:
        """A pipeline the learner proposed, told for the first time with ``reward``: the first one is the
        incumbent; a later one that beats its mean challenges it."""
        if self.incumbent is None:
            self.incumbent = key
        elif reward > observed[self.incumbent].mean:
            self.challengers.append(key)
            self.top_up = True

    def advance(self, observed: dict[bytes, Observed]) -> None:
        """Decide the next race evaluations from what is told: the incumbent gets one more evaluation after a
        new challenge (while it has fewer than ``k``); every challenger with nothing in flight is dropped once
        its mean falls below the incumbent's, promoted once it has as many evaluations as the incumbent (at
        most ``k``; not while the incumbent has one pending or in flight), else given as many more evaluations
        as it has (doubling). Pending evaluations not yet asked are decided afresh, so a challenger dropped
        meanwhile costs nothing more."""
        assert self.incumbent is not None
        pending = [self.incumbent] if self.incumbent in self.pending else []
        if self.top_up and not pending and not self.in_flight.get(self.incumbent) \
                and observed[self.incumbent].count < self.k:
            pending.append(self.incumbent)
        self.top_up = False
        for challenger in list(self.challengers):
            if self.in_flight.get(challenger):
                continue
            mine, theirs = observed[challenger], observed[self.incumbent]
            target = min(theirs.count, self.k)
            if mine.mean < theirs.mean:
                self.challengers.remove(challenger)
            elif mine.count >= target:  # promoted once the incumbent's own evaluations are in
                if not pending and not self.in_flight.get(self.incumbent):
                    self.challengers.remove(challenger)
                    self.incumbent = challenger
            else:
                pending.extend([challenger] * min(mine.count, target - mine.count))
        self.pending = pending

    def state(self, order: list[bytes]) -> dict[str, Any]:
        """The race as indices into ``order`` (the learner's observed pipelines, in order); taken between
        batches, when nothing is in flight."""
        index = {key: i for i, key in enumerate(order)}
        return {"incumbent": None if self.incumbent is None else index[self.incumbent],
                "challengers": [index[k] for k in self.challengers], "pending": [index[k] for k in self.pending],
                "top_up": self.top_up}

    def load(self, state: dict[str, Any] | None, order: list[bytes]) -> None:
        """Restore :meth:`state` (None: a checkpoint from before racing existed: no race yet)."""
        if state:
            self.incumbent = None if state["incumbent"] is None else order[state["incumbent"]]
            self.challengers = [order[i] for i in state["challengers"]]
            self.pending = [order[i] for i in state["pending"]]
            self.top_up = bool(state.get("top_up", False))


ENUMERATE_LIMIT = 1 << 22
"""Largest space whose unseen pipelines are enumerated once rejection sampling stalls."""


class Learner(ABC):
    """Base class of all learners (see the module docstring)."""

    config_class: ClassVar[type[LearnerConfig]] = LearnerConfig
    """The config dataclass this learner takes."""
    handles_repeats: ClassVar[bool] = False
    """True when ``_ask`` itself proposes only unseen, distinct pipelines under ``no_repeat``
    (the base ``ask`` then leaves its proposals as they are)."""

    def __init__(self, env: AutoMLEnv, config: LearnerConfig | None = None, seed: int = 0) -> None:
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            raise UserError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
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
        self.no_repeat = True
        """The no-repeat protocol (see the module docstring); ``learn(no_repeat=...)`` sets it."""
        self.space_size = math.prod(int(n) for n in self.joint_nvec)
        """Pipelines in the joint space."""
        self._seen: set[bytes] = set()
        self._seen_rows: list[np.ndarray] = []
        self._asked_own: deque[bool] = deque()
        """Per asked row not yet told, in order: proposed by the learner (True) or a re-evaluation (False)."""
        self._budget: int | None = None
        """The budget of the current :meth:`learn` (None outside it): where the re-evaluations start."""
        self._observed: dict[bytes, Observed] = {}
        """Pipeline key -> what it was told of that pipeline: what :meth:`recommend` reads."""
        self._race = Race(self.config.race_seeds)
        """The intensification state (``config.race_seeds``; idle when 0)."""

    # -- the interface ---------------------------------------------------------------------------
    def ask(self, n: int) -> list[dict[str, np.ndarray]]:
        """``n`` joint actions to evaluate next."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise UserError(f"ask(n) needs a positive integer n, got {n!r}")
        n = int(n)
        again = self._reevaluations(n)
        if len(again) < n and self._race.pending:
            keys = self._race.take(n - len(again))
            raced = np.stack([self._observed[k].row for k in keys])
            again = np.concatenate([again, raced]) if len(again) else raced
        rows = np.zeros((0, len(self.joint_nvec)), dtype=np.int64)
        if len(again) < n:
            with torch_threads(LEARNER_THREADS):  # small tensors: torch's thread pool only spin-waits
                rows = self.joint(self._ask(n - len(again)))
                if self.no_repeat and not self.handles_repeats:
                    rows = self._distinct(rows, n - len(again))
        self._asked_own.extend([True] * len(rows) + [False] * len(again))
        rows = np.concatenate([rows, again]) if len(again) else rows
        self.remember(rows)
        self.num_asked += len(rows)
        return self.split(rows)

    def _reevaluations(self, n: int) -> np.ndarray:
        """Rows re-evaluating the best pipelines observed so far, once the budget's last
        ``config.reevaluate_share`` is reached (see :class:`LearnerConfig`); empty before, or without it."""
        share = self.config.reevaluate_share
        if not share or self._budget is None or not self._observed:
            return np.zeros((0, len(self.joint_nvec)), dtype=np.int64)
        start = self._budget - int(round(share * self._budget))
        k = max(0, min(n, self.num_asked + n - start))
        if k == 0:
            return np.zeros((0, len(self.joint_nvec)), dtype=np.int64)
        entries = list(self._observed.values())
        means = np.array([e.mean for e in entries])
        top = [int(i) for i in np.argsort(-means, kind="stable")[:self.config.reevaluate_top]]
        counts = {i: entries[i].count for i in top}
        picks = []
        for _ in range(k):  # the fewest evaluations first, then the better mean
            best = min(top, key=lambda i: (counts[i], -means[i]))
            counts[best] += 1
            picks.append(entries[best].row)
        return np.stack(picks)

    def tell(self, actions: Sequence[Actions], rewards: Sequence[float],
             records: Sequence[EvalRecord] | None = None) -> None:
        """Hand back the rewards (and records) of evaluated joint actions, in order."""
        if len(actions) != len(rewards) or (records is not None and len(records) != len(actions)):
            raise UserError(f"tell() got {len(actions)} actions, {len(rewards)} rewards and "
                             f"{'no' if records is None else len(records)} records; the counts must match")
        if not actions:
            raise UserError("tell() needs at least one evaluated action")
        rewards = [float(r) for r in rewards]
        if not np.all(np.isfinite(rewards)):
            raise UserError(f"tell() got non-finite rewards {rewards}")
        joint = self.joint(actions)
        own = np.array([self._asked_own.popleft() if self._asked_own else True for _ in range(len(joint))])
        if own.any():  # re-evaluations (reevaluate_share) feed the recommendation, not the learner
            with torch_threads(LEARNER_THREADS):
                self._tell(joint[own], np.asarray(rewards, dtype=np.float64)[own],
                           None if records is None else [r for r, o in zip(records, own) if o])
        self.remember(joint)
        keys = [self.row_key(row) for row in joint]
        firsts = [key not in self._observed and o for key, o in zip(keys, own)]
        self._observe(joint, rewards)
        if self._race.k:
            self._race.told([k for k, o in zip(keys, own) if not o])
            for key, reward, first in zip(keys, rewards, firsts):
                if first:
                    self._race.offer(key, reward, self._observed)
            self._race.advance(self._observed)
        self.num_evaluations += len(actions)
        self.num_batches += 1

    def learn(self, env: AutoMLEnv, budget: int, batch_size: int, callback: Callback | None = None,
              no_repeat: bool | None = None) -> list[Batch]:
        """Ask, evaluate, tell in batches until ``budget`` evaluations in all; returns this call's batches.

        ``no_repeat`` sets the no-repeat protocol (None keeps the learner's setting, on by default).
        """
        from ma2ml.envs.vector import VectorAutoML

        for name, value in (("budget", budget), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if no_repeat is not None:
            if not isinstance(no_repeat, (bool, np.bool_)):
                raise UserError(f"no_repeat must be True or False, got {no_repeat!r}")
            self.no_repeat = bool(no_repeat)
        self.check_env(env)
        self._budget = int(budget)
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

    # -- the recommendation ----------------------------------------------------------------------
    def recommend(self) -> dict[str, np.ndarray]:
        """The pipeline this learner stands behind now (agent -> tokens), from its own observations: the best
        lower confidence bound of its mean reward (:func:`pick_recommendation`). On a deterministic table
        every pipeline is told once and this is the best observed; under seed noise a pipeline measured
        several times is preferred to one lucky draw (the winner's curse). A learner may override it."""
        if not self._observed:
            raise UserError("recommend() needs at least one told evaluation; call tell() or learn() first")
        if self._race.incumbent is not None:
            return self.split(self._observed[self._race.incumbent].row[None, :])[0]
        entries = list(self._observed.values())
        best = pick_recommendation(np.array([e.total for e in entries]), np.array([e.count for e in entries]),
                                   np.array([e.squares for e in entries]))
        return self.split(entries[best].row[None, :])[0]

    @property
    def own_recommendation(self) -> bool:
        """Whether :meth:`recommend` answers by something other than the shared rule of
        :func:`pick_recommendation` over :meth:`observations` (racing, or a subclass's override): a run then
        records it after every batch, and ``compare`` scores what was recorded."""
        return bool(self._race.k) or type(self).recommend is not Learner.recommend

    def observations(self) -> list[tuple[np.ndarray, float, int]]:
        """Every pipeline told so far: (joint row, mean reward, times told), in the order first told."""
        return [(e.row.copy(), e.mean, e.count) for e in self._observed.values()]

    def observe(self, actions: Sequence[Actions], rewards: Sequence[float]) -> None:
        """Record evaluations for :meth:`recommend` only, without telling the learner (a run resumed from a
        checkpoint written before the recommendation existed rebuilds them from its store)."""
        self._observe(self.joint(actions), [float(r) for r in rewards])

    def _observe(self, joint: np.ndarray, rewards: Sequence[float]) -> None:
        for row, reward in zip(joint, rewards):
            key = self.row_key(row)
            if key not in self._observed:
                self._observed[key] = Observed(np.array(row, dtype=np.int64))
            self._observed[key].add(float(reward))

    # -- the no-repeat protocol ------------------------------------------------------------------
    @staticmethod
    def row_key(row: np.ndarray) -> bytes:
        """A hashable key of one joint token row."""
        return np.ascontiguousarray(row, dtype=np.int64).tobytes()

    def is_seen(self, row: np.ndarray) -> bool:
        """Whether the joint row was asked or told before in this run."""
        return self.row_key(row) in self._seen

    @property
    def num_distinct(self) -> int:
        """Distinct pipelines asked or told so far."""
        return len(self._seen)

    def remember(self, joint: np.ndarray) -> None:
        """Mark joint rows ``(n, T)`` as seen."""
        for row in joint:
            key = self.row_key(row)
            if key not in self._seen:
                self._seen.add(key)
                self._seen_rows.append(np.array(row, dtype=np.int64))

    def _distinct(self, rows: np.ndarray, n: int) -> np.ndarray:
        """Joint ``rows`` with repeats replaced (see the module docstring); ``n`` proposals."""
        kept: list[np.ndarray] = []
        taken: set[bytes] = set()

        def keep(rows: np.ndarray) -> None:
            for row in rows:
                key = self.row_key(row)
                if len(kept) < n and key not in self._seen and key not in taken:
                    taken.add(key)
                    kept.append(row)

        keep(rows)
        for _ in range(RESAMPLE_ROUNDS):
            if len(kept) == n or not self.unseen_left(taken):
                break
            keep(self.joint(self._ask(n - len(kept))))
        if len(kept) < n:
            kept.extend(self.unseen_rows(n - len(kept), taken))
        return np.stack(kept)

    def unseen_left(self, exclude: set[bytes] | frozenset[bytes] = frozenset()) -> int:
        """Pipelines neither seen nor in ``exclude``."""
        return self.space_size - len(self._seen) - len(exclude - self._seen)

    def unseen_rows(self, k: int, exclude: set[bytes] | frozenset[bytes] = frozenset()) -> np.ndarray:
        """``k`` distinct uniform rows neither seen nor in ``exclude`` (from ``self.rng``); once the
        space runs out, the rest are uniform rows (repeats are then unavoidable)."""
        rows: list[np.ndarray] = []
        taken = set(exclude)
        tries = 0
        while len(rows) < k and self.unseen_left(taken) > 0 and tries < 64 * k:
            row = self.rng.integers(0, self.joint_nvec)
            tries += 1
            key = self.row_key(row)
            if key not in self._seen and key not in taken:
                taken.add(key)
                rows.append(row)
        if len(rows) < k and self.unseen_left(taken) > 0 and self.space_size <= ENUMERATE_LIMIT:
            excluded = self._seen | taken
            fresh = [r for r in self.layout.all_rows() if self.row_key(r) not in excluded]
            picks = self.rng.permutation(len(fresh))[:k - len(rows)]
            rows.extend(fresh[int(i)] for i in picks)
        while len(rows) < k:
            rows.append(self.rng.integers(0, self.joint_nvec))
        return np.stack(rows).astype(np.int64)

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
            "no_repeat": self.no_repeat,
            "seen": [row.tolist() for row in self._seen_rows],
            "observed": [[e.row.tolist(), e.total, e.count, e.squares] for e in self._observed.values()],
            "race": self._race.state(list(self._observed)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output into a learner built for the same env and config."""
        self.check_checkpoint(state)
        self.seed = int(state["seed"])
        self.num_asked = int(state["num_asked"])
        self.num_evaluations = int(state["num_evaluations"])
        self.num_batches = int(state["num_batches"])
        self.rng.bit_generator.state = state["rng"]
        # checkpoints written before the no-repeat protocol (December 2026) ran with repeats
        self.no_repeat = bool(state.get("no_repeat", False))
        self._seen, self._seen_rows = set(), []
        self.remember(np.asarray(state.get("seen", []), dtype=np.int64).reshape(-1, len(self.joint_nvec)))
        self._observed = {}  # checkpoints before recommend() (December 2026) hold none: it starts afresh
        for row, total, count, *squares in state.get("observed", []):
            row = np.asarray(row, dtype=np.int64)
            spread = float(squares[0]) if squares else float(total) ** 2 / max(int(count), 1)  # none recorded: 0
            self._observed[self.row_key(row)] = Observed(row, float(total), int(count), spread)
        self._race = Race(self.config.race_seeds)
        self._race.load(state.get("race"), list(self._observed))

    def check_checkpoint(self, state: dict[str, Any]) -> None:
        """``ValueError`` unless ``state`` was written by this kind of learner with this config (a checkpoint
        from before a base field existed holds that field's default)."""
        if state.get("learner") != type(self).__name__:
            raise UserError(f"this checkpoint is of {state.get('learner')!r}, not {type(self).__name__!r}")
        base = {f.name: f.default for f in fields(LearnerConfig)}
        if {**base, **state["config"]} != asdict(self.config):
            raise UserError(f"checkpoint config {state['config']} differs from this learner's {asdict(self.config)}")

    # -- helpers for subclasses ------------------------------------------------------------------
    def check_env(self, env: AutoMLEnv) -> None:
        """``ValueError`` unless ``env`` is an :class:`~ma2ml.envs.core.protocol.AutoMLEnv` with this
        learner's agents and token layout."""
        if not isinstance(env, AutoMLEnv):
            missing = [m for m in ("possible_agents", "action_space", "state", "evaluate_batch", "reward")
                       if not hasattr(env, m)]
            raise UserError(f"learners need an ma2ml env (the AutoMLEnv protocol); {type(env).__name__} lacks "
                             f"{missing}: make one with pettingzoo.make('parallel', 'ma2ml/...')")
        agents = list(env.possible_agents)
        nvec = {a: np.asarray(env.action_space(a).nvec).tolist() for a in agents}
        if agents != self.agents or nvec != {a: v.tolist() for a, v in self.nvec.items()}:
            raise UserError(f"this learner was built for agents {self.agents} with token sizes "
                             f"{ {a: v.tolist() for a, v in self.nvec.items()} }, the env has {agents} with {nvec}")

    def joint(self, actions: Sequence[Actions]) -> np.ndarray:
        """Joint actions -> an int64 array (n, total tokens), agents in ``self.agents`` order."""
        rows = self.layout.join_rows(actions)
        if np.any(rows < 0) or np.any(rows >= self.joint_nvec):
            bad = rows[np.any((rows < 0) | (rows >= self.joint_nvec), axis=1)][0]
            raise UserError(f"joint action {bad.tolist()} does not fit the token sizes {self.joint_nvec.tolist()}")
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


@contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """A library's INFO logs (Optuna's trials, a TorchRL storage announcing itself) held back for a block; its
    warnings pass and its logging level is restored."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
