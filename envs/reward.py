"""The shared reward: accuracy under a FLOPs constraint (MnasNet's form, as in the poster).

R = Acc * (FLOPs / C) ** w, with w = ``exponent`` when FLOPs > C and 0 otherwise (a hard
constraint, MnasNet's default w = -0.07), or w = ``exponent`` on both sides when ``soft``.
FLOPs are multiply-adds. A failed evaluation (any status but ``ok``) gets reward 0.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlopsReward:
    constraint: float
    """C, in multiply-adds."""
    exponent: float = -0.07
    """w, applied above the constraint (and below it too when ``soft``)."""
    soft: bool = False
    """Apply w on both sides of the constraint."""

    def __post_init__(self) -> None:
        if not self.constraint > 0:
            raise ValueError(f"flops_constraint must be > 0 (multiply-adds), got {self.constraint}")
        if self.exponent > 0:
            raise ValueError(f"reward_exponent must be <= 0 (a penalty), got {self.exponent}")

    def __call__(self, accuracy: float, flops: float, status: str = "ok") -> float:
        if status != "ok":
            return 0.0
        w = self.exponent if flops > 0 and (self.soft or flops > self.constraint) else 0.0
        return float(accuracy * (flops / self.constraint) ** w)
