"""Evaluation records: what one evaluation of a joint action returns, and the joint action itself.

:class:`EvalRecord` (with :data:`STATUSES`), :data:`Actions`, :func:`decode_actions` (the
one check of an agent -> tokens dict against the module spaces), :func:`checked_seed` and
:func:`checked_batch` (the one check of a seed and of an ``evaluate_batch`` call) and :func:`seeds_from`.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from ma2ml.envs.core.errors import UserError

if TYPE_CHECKING:
    from ma2ml.envs.spaces import ModuleSpace


STATUSES = ("ok", "diverged", "oom", "timeout", "failed")
"""Every evaluation ends in one of these; only ``ok`` earns a non-zero reward."""


Actions = Mapping[str, Any]
"""A joint action: agent name -> token vector."""


@dataclass
class EvalRecord:
    """The outcome of one evaluation (JSON-friendly via :meth:`to_dict`)."""

    status: str
    """One of :data:`STATUSES`."""
    val_acc: float = 0.0
    """Validation accuracy after the last epoch: the reward's input."""
    test_acc: float = 0.0
    """Test accuracy, reported only (never used by the reward)."""
    flops: int = 0
    """Multiply-adds of one forward pass on one image."""
    params: int = 0
    """Trainable parameters."""
    curve: list[float] = field(default_factory=list)
    """Validation accuracy after each epoch."""
    train_seconds: float = 0.0
    """Wall-clock seconds of training and scoring (not part of the env's ``infos`` by default)."""
    seed: int = 0
    """Training seed."""
    pipeline: dict[str, Any] = field(default_factory=dict)
    """The decoded choice of every agent."""
    error: str | None = None
    """What went wrong, for any status but ``ok``."""

    def to_dict(self) -> dict[str, Any]:
        """The record as a new dict (what ``dataclasses.asdict`` gives, ten times faster): the
        containers are copied, so changing the dict never changes the record."""
        return {f: _copy_tree(getattr(self, f)) for f in _RECORD_FIELDS}

    def info(self, reward: float, timings: bool = False) -> dict[str, Any]:
        """The one dict shape of a record handed to users (env ``infos``, the SB3 ``VecEnv``'s infos):
        :meth:`to_dict` plus ``reward``; the wall-clock ``train_seconds`` only when ``timings``
        (so identically seeded runs give identical infos)."""
        out = self.to_dict()
        if not timings:
            del out["train_seconds"]
        out["reward"] = float(reward)
        return out


_RECORD_FIELDS = tuple(f.name for f in fields(EvalRecord))


_ATOMS = (str, int, float, bool, type(None))


def _copy_tree(obj: Any) -> Any:
    """A deep copy of a JSON-like tree (dicts, lists, tuples of atoms); anything else by ``deepcopy``."""
    kind = type(obj)
    if kind in _ATOMS:
        return obj
    if kind is dict:
        return {k: _copy_tree(v) for k, v in obj.items()}
    if kind is list:
        return [_copy_tree(v) for v in obj]
    if kind is tuple:
        return tuple(_copy_tree(v) for v in obj)
    return copy.deepcopy(obj)


def checked_tokens(spaces: Mapping[str, ModuleSpace], actions: Actions) -> dict[str, list[int]]:
    """Agent -> its token list, every agent's tokens checked by its module space: the one validation of
    a joint action on an evaluation's path (a wrong agent set or a bad token is one ``ValueError``)."""
    if not isinstance(actions, Mapping) or set(actions) != set(spaces):
        decode_actions(spaces, actions)  # raises the one error for a wrong agent set
    return {agent: space.check(actions[agent], agent).tolist() for agent, space in spaces.items()}


def decode_actions(spaces: Mapping[str, ModuleSpace], actions: Actions) -> dict[str, Any]:
    """Validate and decode a joint action; one ``ValueError`` naming the problem."""
    if not isinstance(actions, Mapping):
        raise UserError(f"actions must be a dict agent -> tokens, got {type(actions).__name__}")
    if set(actions) != set(spaces):
        named = sorted(actions, key=lambda a: (not isinstance(a, str), repr(a)))  # keys of any type: 0, None, ...
        unknown = [a for a in named if not isinstance(a, str) or a not in spaces]
        raise UserError(f"actions name agents {named}" + (f" (unknown: {unknown})" if unknown else "")
                        + f"; this env's agents are {list(spaces)}")
    return {agent: space.decode(actions[agent], agent) for agent, space in spaces.items()}


MAX_SEED = 2**63 - 1
"""The largest seed (what an SQLite integer and a NumPy int64 hold); seeds are 0..MAX_SEED."""


def checked_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as an ``int``: a Python or NumPy integer (``np.int64(5)``, ``np.uint64(5)``) in
    ``0..MAX_SEED``; a bool, a float (even ``5.0``), a string or None is one ``UserError``."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"{what} must be an integer in 0..{MAX_SEED} (a Python or NumPy integer, not a bool), "
                        f"got {seed!r}")
    return int(seed)


def checked_batch(batch: Any, seeds: Any) -> tuple[Sequence[Actions], list[int]]:
    """(batch, seeds as ints) of an ``evaluate_batch`` call: a list (any sequence) of joint actions and as
    many seeds (:func:`checked_seed`); anything else is one ``UserError`` (the joint actions themselves
    are checked by :func:`checked_tokens`)."""
    for name, value in (("batch", batch), ("seeds", seeds)):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)) \
                or (isinstance(value, np.ndarray) and value.ndim != 1):
            hint = "; wrap one joint action in a list" if name == "batch" and isinstance(value, Mapping) else ""
            what = "joint actions (agent -> tokens dicts)" if name == "batch" else "training seeds"
            shape = f" of shape {np.shape(value)}" if isinstance(value, np.ndarray) else ""
            raise UserError(f"evaluate_batch: {name} must be a list of {what}, got {type(value).__name__}{shape}{hint}")
    if len(batch) != len(seeds):
        raise UserError(f"evaluate_batch: a batch of {len(batch)} joint actions needs as many seeds, got {len(seeds)}")
    return batch, [checked_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]


def seeds_from(rng: np.random.Generator, n: int) -> list[int]:
    """Training seeds drawn from an environment's generator."""
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]
