"""The module-space base (:class:`ModuleSpace`): each module agent's token layout and the typed
choice it decodes to (:class:`HParams`, :class:`AugPolicy`, ..., :class:`Recipe`).

A :class:`ModuleSpace` is a list of :class:`TokenField` s, one decision token each. Its
``nvec`` is the agent's ``MultiDiscrete`` action layout; ``decode`` turns a token vector into
a typed config (checking every token with ``check``: integers, or integral floats, in range;
one ``ValueError`` naming the agent, the token and its valid range otherwise), ``encode`` is
the inverse, ``describe`` prints the config for humans and ``apply`` writes the config into
the training :class:`Recipe`.

Fields with a single choice are constants: they take no token, so a compact space (the
benchmark table's) can fix what it does not search.

To add a module of your own, subclass :class:`ModuleSpace`, list its fields, implement
``build`` (values -> config), ``values`` (config -> values) and ``apply`` (how the choice
enters training), and pass an instance to the environment through ``spaces={name: ...}``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces as gym_spaces

from ma2ml.envs.core.errors import UserError
from ma2ml.models.augment import AUG_OPS, NUM_PROBS


def _token_value(value: Any) -> int | None:
    """A token as a Python int: integers and integral finite floats; None for anything else (bools too)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return None


@dataclass(frozen=True)
class TokenField:
    """One decision: a name and its ordered choices (the token is the index)."""

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise UserError(f"field {self.name!r} has no choices")

    @property
    def searched(self) -> bool:
        """Whether the field takes a token (a single choice is a constant)."""
        return len(self.choices) > 1


@dataclass(frozen=True)
class HParams:
    """Training hyper-parameters, the HPO agent's config."""

    lr: float = 0.05
    """Peak learning rate of SGD (cosine schedule to 0)."""
    weight_decay: float = 5e-4
    """L2 weight decay."""
    momentum: float = 0.9
    """SGD (Nesterov) momentum."""
    batch_size: int = 64
    """Mini-batch size."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy loss."""
    drop_path: float = 0.0
    """Drop-path probability of each cell branch."""


@dataclass(frozen=True)
class AugOp:
    """One AutoAugment operation: its name, apply probability and magnitude level (0..9)."""

    op: str
    prob: float
    magnitude: int


@dataclass(frozen=True)
class AugPolicy:
    """An AutoAugment policy: K sub-policies of two operations each."""

    sub_policies: tuple[tuple[AugOp, AugOp], ...]

    def as_tensor(self) -> torch.Tensor:
        """(K, 2, 3) long tensor of (op index, prob level, magnitude level) for ``apply_policy``."""
        rows = [
            [[AUG_OPS.index(o.op), round(o.prob * (NUM_PROBS - 1)), o.magnitude] for o in sub]
            for sub in self.sub_policies
        ]
        return torch.tensor(rows, dtype=torch.long)


@dataclass
class Recipe:
    """Everything the train evaluator needs; each module's ``apply`` fills in its part.

    Modules that are not agents of the environment leave the task's defaults in place.
    ``options`` is free-form room for modules added by users (read by their own hooks).
    """

    architecture: Any
    """The NAS choice (a :class:`Genotype` for cell spaces); the task's ``build_network`` builds it."""
    hparams: HParams
    augment: AugPolicy | None = None
    make_optimizer: Callable[[Iterable[torch.nn.Parameter], HParams], torch.optim.Optimizer] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    input_size: int | None = None
    """Side of the square images the network is trained, scored and costed at (set by NAS spaces
    that search the input resolution); None keeps the data's size."""
    epochs: int | None = None
    """Training epochs (set by HPO spaces that search the training length; the cosine schedule
    spans them); None keeps the budget's."""


class ModuleSpace(ABC):
    """A module agent's search space (see the module docstring)."""

    kind: str = "module"

    def __init__(self, fields_: Sequence[TokenField]) -> None:
        self.fields: tuple[TokenField, ...] = tuple(fields_)
        self.token_fields: tuple[TokenField, ...] = tuple(f for f in self.fields if f.searched)
        if not self.token_fields:
            raise UserError(f"{type(self).__name__} searches nothing: every field has one choice")
        self._nvec = np.array([len(f.choices) for f in self.token_fields], dtype=np.int64)

    # -- layout -----------------------------------------------------------------------------
    @property
    def nvec(self) -> np.ndarray:
        """Sizes of the decision tokens (a copy)."""
        return self._nvec.copy()

    @property
    def token_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.token_fields)

    def action_space(self, seed: int | None = None) -> gym_spaces.MultiDiscrete:
        return gym_spaces.MultiDiscrete(self._nvec, seed=seed)

    @property
    def size(self) -> int:
        """Number of distinct token vectors."""
        return math.prod(int(n) for n in self._nvec)

    # -- conversion -------------------------------------------------------------------------
    def check(self, tokens: Any, agent: str | None = None) -> np.ndarray:
        """Validate a token vector; returns it as int64. Raises one clear ``ValueError``.

        ``tokens`` is a sequence (list, tuple, array, tensor) of one token per field of
        :attr:`token_names`. A token is an integer in ``0..n-1`` (n: the field's number of
        choices): a Python or NumPy integer, or an integral float such as ``2.0`` (what
        float-valued policies emit). Booleans, non-integral or non-finite floats, strings,
        None, complex numbers and any other object are refused; the error names the agent,
        the token and its valid range.
        """
        who = f"agent {agent!r}" if agent else type(self).__name__
        if isinstance(tokens, np.ma.MaskedArray):  # a masked token is no choice; unmasked ones are plain tokens
            masked = np.flatnonzero(np.ma.getmaskarray(tokens))
            if masked.size:
                raise UserError(f"{who}: token {int(masked[0])} is masked; give every token a value")
            tokens = tokens.data
        if isinstance(tokens, np.ndarray) and tokens.dtype.kind in "iu":
            arr = tokens  # the fast path: an integer array needs no per-token look
        else:
            arr = np.asarray(tokens, dtype=object)  # keeps each token as given (bools, big ints, ...)
        if arr.shape != self._nvec.shape:
            raise UserError(
                f"{who}: expected {len(self._nvec)} tokens {list(self.token_names)}, got shape {arr.shape}"
            )
        if arr.dtype != object:
            bad = np.flatnonzero((arr < 0) | (arr >= self._nvec))
            if bad.size:
                raise self._out_of_range(who, int(bad[0]), arr[int(bad[0])])
            return arr.astype(np.int64)
        given = arr.tolist()
        values = [_token_value(v) for v in given]
        for i, v in enumerate(values):
            if v is None:
                raise UserError(
                    f"{who}: token {i} ({self.token_names[i]}) = {given[i]!r} is not a token; tokens are "
                    f"integers (or integral floats), valid values are 0..{self._nvec[i] - 1}"
                )
            if not 0 <= v < self._nvec[i]:
                raise self._out_of_range(who, i, given[i])
        return np.array(values, dtype=np.int64)

    def _out_of_range(self, who: str, i: int, value: Any) -> UserError:
        return UserError(
            f"{who}: token {i} ({self.token_names[i]}) = {value} is out of range; "
            f"valid values are 0..{self._nvec[i] - 1}"
        )

    def decode(self, tokens: Any, agent: str | None = None) -> Any:
        """Token vector -> typed config."""
        arr = iter(self.check(tokens, agent).tolist())
        values = {f.name: (f.choices[next(arr)] if f.searched else f.choices[0]) for f in self.fields}
        return self.build(values)

    def encode(self, config: Any) -> np.ndarray:
        """Typed config -> token vector (``ValueError`` if the config is outside the space)."""
        values = self.values(config)
        out = []
        for f in self.token_fields:
            try:
                out.append(f.choices.index(values[f.name]))
            except ValueError:
                raise UserError(
                    f"{type(self).__name__}: {f.name} = {values[f.name]!r} is not in the space; "
                    f"valid values are {list(f.choices)}"
                ) from None
        for f in self.fields:
            if not f.searched and values[f.name] != f.choices[0]:
                raise UserError(f"{type(self).__name__}: {f.name} is fixed to {f.choices[0]!r}")
        return np.array(out, dtype=np.int64)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random token vector."""
        return rng.integers(0, self._nvec).astype(np.int64)

    # -- per-module parts -------------------------------------------------------------------
    @abstractmethod
    def build(self, values: Mapping[str, Any]) -> Any:
        """Field values -> typed config."""

    @abstractmethod
    def values(self, config: Any) -> dict[str, Any]:
        """Typed config -> field values (inverse of ``build``)."""

    @abstractmethod
    def apply(self, config: Any, recipe: Recipe) -> None:
        """Write the config into the training recipe."""

    def to_json(self, config: Any) -> Any:
        """JSON-friendly form of the config (for records and ``best.json``)."""
        return {k: v for k, v in self.values(config).items()}

    def describe(self, config: Any | None = None) -> str:
        """The config in human terms; without one, the space itself."""
        if config is None:
            return "\n".join(
                f"  {f.name}: {len(f.choices)} choices {list(f.choices)[:8]}{' ...' if len(f.choices) > 8 else ''}"
                for f in self.token_fields
            )
        return ", ".join(f"{k}={v}" for k, v in self.values(config).items())
