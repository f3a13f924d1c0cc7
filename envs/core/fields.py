"""Typed, bounded values: what every learner config field and env argument declares, checked in one place.

A learner config field (or an env argument) declares its type and its valid values once, in its
annotation::

    hidden: Annotated[int, Range(1, 1024)] = 64
    kl_coef: Annotated[float, Range(0, 100)] = 0.1
    observe: Literal["own", "all"] = "own"
    net_arch: Annotated[tuple[int, ...], Range(1, 1024), Length(0, 16)] = (64, 64)
    batch_size: Annotated[int | None, Range(1, 1_000_000)] = None

:func:`check_fields` (run by :class:`~ma2ml.agents.base.LearnerConfig` before anything is built;
:func:`check_value` checks one value, e.g. an env argument)
checks every field against its annotation (a number without a :class:`Range` is only type-checked;
every built-in learner's numbers have one, and a test checks it): ``bool`` takes only ``True``/``False``; ``int`` takes
integers, never bools or floats; ``float`` takes finite real numbers (integers too, stored as
floats), never bools; ``str`` takes strings (``Literal`` names the valid ones); ``tuple[int, ...]``
takes a list or tuple of such integers (stored as a tuple); ``X | None`` takes ``None`` too. A
bad value is one :class:`~ma2ml.envs.core.errors.UserError` naming the config, the field, the
value and the valid values. Upper bounds keep a typo from allocating gigabytes
(``hidden=1000000000``).
"""
from __future__ import annotations

import functools
import math
import numbers
import types
import typing
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

from ma2ml.envs.core.errors import UserError

__all__ = ["Annotated", "Length", "Literal", "Range", "check_fields", "check_value", "field_rules", "shorten"]


@dataclass(frozen=True)
class Range:
    """Valid numbers ``low..high`` (both ends included unless ``low_open`` / ``high_open``)."""

    low: float
    """Smallest valid value (or the open lower end)."""
    high: float
    """Largest valid value (or the open upper end)."""
    low_open: bool = False
    """``low`` itself is invalid (e.g. a learning rate > 0)."""
    high_open: bool = False
    """``high`` itself is invalid (e.g. a decay < 1)."""

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self, integer: bool) -> str:
        if integer:
            return f"in {_num(self.low)}..{_num(self.high)}"
        return f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"

    def outside(self, integer: bool) -> list[Any]:
        """Values just outside the range (for tests that generate bad input)."""
        step = 1 if integer else (abs(self.high - self.low) or 1.0) * 1e-3
        low = self.low if self.low_open else self.low - step
        high = self.high if self.high_open else self.high + step
        return [int(low) if integer else float(low), int(high) if integer else float(high)]


@dataclass(frozen=True)
class Length:
    """Valid lengths ``low..high`` of a tuple field."""

    low: int
    """Fewest items."""
    high: int
    """Most items."""


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) >= 1e4 else f"{x:g}"


@dataclass(frozen=True)
class FieldRule:
    """What a config field accepts (read from its annotation by :func:`field_rules`)."""

    name: str
    """The field's name."""
    kind: type
    """``bool``, ``int``, ``float``, ``str``, ``tuple`` (a tuple of ints), or ``object``: another type (a
    plugin's own), which only the config's ``validate`` checks."""
    optional: bool = False
    """``None`` is valid too."""
    range: Range | None = None
    """Valid numbers (of the value, or of each item of a tuple)."""
    length: Length | None = None
    """Valid lengths of a tuple."""
    choices: tuple[str, ...] | None = None
    """Valid strings (a ``Literal`` annotation)."""

    def describe(self) -> str:
        """The valid values in words."""
        if self.kind is bool:
            text = "True or False"
        elif self.choices is not None:
            text = " or ".join(repr(c) for c in self.choices)
        elif self.kind is tuple:
            length = f" of {self.length.low}..{self.length.high} " if self.length else " of "
            text = f"a list{length}integers {self.range.describe(True) if self.range else ''}".rstrip()
        elif self.kind is str:
            text = "strings"
        else:
            integer = self.kind is int
            text = f"{'integers' if integer else 'finite numbers'} {self.range.describe(integer) if self.range else ''}"
        return ("None or " + text if self.optional else text).strip()

    def coerce(self, value: Any) -> tuple[bool, Any]:
        """``(valid, the value as stored)``."""
        if self.kind is object:
            return True, value
        if value is None:
            return self.optional, None
        if self.kind is bool:
            return _is_bool(value), bool(value) if _is_bool(value) else value
        if self.kind is str:
            ok = isinstance(value, str) and (self.choices is None or value in self.choices)
            return ok, value
        if self.kind is tuple:
            if not isinstance(value, (list, tuple)):
                return False, value
            items = [_integer(v) for v in value]
            ok = all(v is not None and (self.range is None or v in self.range) for v in items)
            ok = ok and (self.length is None or self.length.low <= len(items) <= self.length.high)
            return ok, tuple(items) if ok else value
        if self.kind is int:
            number = _integer(value)
        else:
            number = _real(value)
        ok = number is not None and (self.range is None or number in self.range)
        return ok, number if ok else value


def _is_bool(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (bool, np.bool_))


def _integer(value: Any) -> int | None:
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _real(value: Any) -> float | None:
    if _is_bool(value) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def rule_of(name: str, hint: Any) -> FieldRule:
    """The :class:`FieldRule` of an annotation (``Annotated[int, Range(1, 9)]``, ``bool``, ``str | None`` ...)."""
    extras: tuple[Any, ...] = ()
    if typing.get_origin(hint) is Annotated:
        hint, *rest = typing.get_args(hint)
        extras = tuple(rest)
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"config field {name}: unions other than X | None are not supported")
        hint = args[0]
    choices = None
    if typing.get_origin(hint) is Literal:
        choices = tuple(typing.get_args(hint))
        kind: type = str
    elif typing.get_origin(hint) is tuple:
        kind = tuple
    elif hint in (bool, int, float, str):
        kind = hint
    else:
        kind = object  # a type of a plugin's own: its config checks it in validate()
    rng = next((e for e in extras if isinstance(e, Range)), None)
    length = next((e for e in extras if isinstance(e, Length)), None)
    return FieldRule(name, kind, optional, rng, length, choices)


@functools.lru_cache(maxsize=None)
def field_rules(config_class: type) -> tuple[FieldRule, ...]:
    """Every field's :class:`FieldRule`, from the dataclass's annotations."""
    hints = typing.get_type_hints(config_class, include_extras=True)
    return tuple(rule_of(f.name, hints[f.name]) for f in fields(config_class))


def shorten(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters (an error line names a value, it does not dump it)."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit - 3] + "..."


def _refuse(owner: str, name: str, value: Any, rule: FieldRule) -> UserError:
    return UserError(f"{owner}{name} = {shorten(value)} is invalid; valid values are {rule.describe()}")


def check_value(owner: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` as stored (ints as floats for a float, lists as tuples) if it satisfies the annotation
    ``hint``; else one :class:`UserError` naming ``owner`` (e.g. ``"ma2ml/AutoML-DigitsBench-v0: "``),
    ``name``, the value and the valid values."""
    rule = rule_of(name, hint)
    ok, stored = rule.coerce(value)
    if not ok:
        raise _refuse(owner, name, value, rule)
    return stored


def check_fields(config: Any) -> None:
    """Check (and normalise: ints to floats, lists to tuples) every field of a config dataclass;
    one :class:`UserError` for the first bad one."""
    for rule in field_rules(type(config)):
        value = getattr(config, rule.name)
        ok, stored = rule.coerce(value)
        if not ok:
            raise _refuse(f"{type(config).__name__}.", rule.name, value, rule)
        setattr(config, rule.name, stored)
