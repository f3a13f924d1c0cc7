"""The FBNetV3 / MobileNetV3-style NAS space of the ImageNet setting (its network is
:mod:`ma2ml.models.fbnet`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ma2ml.envs.core.errors import UserError
from ma2ml.models.fbnet import (ACTIVATIONS, EXPANSIONS, KERNELS, RESOLUTIONS, STAGES, FBNetArch, Stage,
                                     StageChoices, fbnet_macs)
from ma2ml.envs.spaces import ModuleSpace, Recipe, TokenField


# -- the space ---------------------------------------------------------------------------------
class FBNetSpace(ModuleSpace):
    """Per stage: depth, width, kernel, expansion, squeeze-excite; plus the input resolution.

    Token names are ``s{i}.depth``, ``s{i}.width``, ``s{i}.kernel``, ``s{i}.expansion``,
    ``s{i}.se`` (stage ``i`` from 1) and ``resolution``; each stage's ``stride`` and
    ``activation`` are constants. ``apply`` sets the recipe's architecture and its
    ``input_size`` (the trainer resizes the images to it).
    """

    layout_name = "ma2ml.envs.spaces.fbnet.FBNetSpace"
    """This class's name in the store's settings (fixed: stores keep resuming if the class moves)."""

    kind = "nas"

    def __init__(
        self,
        stages: Sequence[StageChoices] = STAGES,
        kernels: Sequence[int] = KERNELS,
        expansions: Sequence[int] = EXPANSIONS,
        se: Sequence[bool] = (False, True),
        resolutions: Sequence[int] = RESOLUTIONS,
    ) -> None:
        if not stages:
            raise UserError("FBNetSpace needs at least one stage")
        for name, values in (("kernels", kernels), ("expansions", expansions), ("resolutions", resolutions)):
            if not values or any(int(v) != v or v < 1 for v in values):
                raise UserError(f"{name} must be positive integers, got {list(values)}")
        if any(k % 2 == 0 for k in kernels):
            raise UserError(f"kernels must be odd, got {list(kernels)}")
        for i, st in enumerate(stages, 1):
            if st.activation not in ACTIVATIONS:
                raise UserError(f"stage {i}: activation {st.activation!r}; valid values are {list(ACTIVATIONS)}")
            if st.stride not in (1, 2) or not st.depths or min(st.depths) < 1 or not st.widths or min(st.widths) < 1:
                raise UserError(f"stage {i}: stride must be 1 or 2 and depths/widths positive, got {st}")
        self.stages = tuple(stages)
        fs: list[TokenField] = []
        for i, st in enumerate(self.stages, 1):
            fs += [
                TokenField(f"s{i}.depth", tuple(st.depths)),
                TokenField(f"s{i}.width", tuple(st.widths)),
                TokenField(f"s{i}.kernel", tuple(kernels)),
                TokenField(f"s{i}.expansion", tuple(expansions)),
                TokenField(f"s{i}.se", tuple(bool(s) for s in se)),
                TokenField(f"s{i}.stride", (st.stride,)),
                TokenField(f"s{i}.activation", (st.activation,)),
            ]
        fs.append(TokenField("resolution", tuple(int(r) for r in resolutions)))
        super().__init__(fs)

    def build(self, values: Mapping[str, Any]) -> FBNetArch:
        stages = tuple(
            Stage(int(values[f"s{i}.depth"]), int(values[f"s{i}.width"]), int(values[f"s{i}.kernel"]),
                  int(values[f"s{i}.expansion"]), bool(values[f"s{i}.se"]), int(values[f"s{i}.stride"]),
                  str(values[f"s{i}.activation"]))
            for i in range(1, len(self.stages) + 1)
        )
        return FBNetArch(stages, int(values["resolution"]))

    def values(self, config: FBNetArch) -> dict[str, Any]:
        if len(config.stages) != len(self.stages):
            raise UserError(f"FBNetSpace: expected {len(self.stages)} stages, got {len(config.stages)}")
        out: dict[str, Any] = {}
        for i, stage in enumerate(config.stages, 1):
            out.update({f"s{i}.{k}": v for k, v in asdict(stage).items()})
        out["resolution"] = config.resolution
        return out

    def apply(self, config: FBNetArch, recipe: Recipe) -> None:
        recipe.architecture = config
        recipe.input_size = config.resolution

    def to_json(self, config: FBNetArch) -> dict[str, Any]:
        return config.to_dict()

    def describe(self, config: FBNetArch | None = None) -> str:
        if config is None:
            return super().describe()
        stages = " | ".join(
            f"{s.depth}x{s.width} k{s.kernel} e{s.expansion}{' se' if s.se else ''}" for s in config.stages
        )
        return f"{config.resolution}px: {stages}"

    def flops(self, config: FBNetArch | Any, num_classes: int = 1000, width_mult: float = 1.0) -> int:
        """Multiply-adds of an architecture or a token vector (:func:`fbnet_macs`)."""
        arch = config if isinstance(config, FBNetArch) else self.decode(config)
        return fbnet_macs(arch, num_classes, width_mult=width_mult)
