"""Module spaces: each agent's token layout, decode/encode, description and how its choice
enters training (the base in :mod:`ma2ml.envs.spaces.base`, AUG/NAS/HPO/token spaces in
:mod:`ma2ml.envs.spaces.modules`); the FBNet NAS space of the ImageNet setting
(:mod:`ma2ml.envs.spaces.fbnet`, imported on first use).
"""
from __future__ import annotations

from typing import Any

from ma2ml.envs.spaces.base import AugOp, AugPolicy, HParams, ModuleSpace, Recipe, TokenField
from ma2ml.envs.spaces.modules import HPO_DEFAULT_LEVELS, AugSpace, HpoSpace, NasSpace, TokenSpace

__all__ = ["AugOp", "AugPolicy", "AugSpace", "HParams", "HPO_DEFAULT_LEVELS", "HpoSpace", "ModuleSpace", "NasSpace",
           "Recipe", "TokenField", "TokenSpace", "FBNetSpace"]


def __getattr__(name: str) -> Any:
    if name == "FBNetSpace":
        from ma2ml.envs.spaces.fbnet import FBNetSpace

        return FBNetSpace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
