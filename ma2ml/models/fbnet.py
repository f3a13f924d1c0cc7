"""FBNetV3 / MobileNetV3-style architectures for ImageNet: the NAS space of the poster's ImageNet setting.

The network is a MobileNetV3 skeleton (Howard et al., ICCV 2019) whose stages are searched as in
FBNetV3 (Dai et al., CVPR 2021):

- stem: 3x3 conv, stride 2, 16 channels, hard-swish; then one fixed depthwise-separable block
  (3x3 depthwise + 1x1 projection to 16 channels, residual), as MobileNetV3-Large starts;
- six searched stages of inverted-residual (MBConv) blocks. Per stage the agent picks the
  **depth** (blocks), **width** (output channels), **kernel** of the depthwise conv (3 or 5),
  **expansion** ratio (3, 4 or 6; hidden = expansion x input channels, rounded to a multiple
  of 8) and **squeeze-excite** on/off (MobileNetV3's SE: reduction 4, hard-sigmoid gate). The
  first block of a stage has the stage's stride; a block has a residual connection when its
  stride is 1 and its input and output widths agree (with stochastic depth, "drop path",
  rising linearly to the HParams' ``drop_path`` over the blocks, as EfficientNet does);
- head: 1x1 conv to 1280 channels, hard-swish, global average pooling, linear classifier;
- the **input resolution** is a token too (192..320 px by default), as in FBNetV3.

Strides are (2, 2, 2, 1, 2, 1): a 224 px input ends at 7x7, like MobileNetV3. Stages 1-2 use
ReLU, later ones hard-swish. Stride and activation are stored in each :class:`Stage` (constant
fields of the space, no tokens), so an :class:`FBNetArch` describes its network completely.

FLOPs are multiply-adds at the chosen resolution, counted like everywhere else (convolutions
and linear layers; see :mod:`ma2ml.models.flops`). Uniformly random architectures of the default
space span about 150M-1750M (5th-95th percentiles about 280M-1090M, median about 580M), so the
poster's C = 600M constraint splits the space. :func:`fbnet_macs` computes the same number
analytically from the block plan, each block's multiply-adds cached by its shape: tens of
thousands of candidates per second, equal to ``count_macs`` (tested), for learners that screen
candidates against the constraint.

:class:`FBNetBudget` adds the proxy network's width multiplier to the task budget. FLOPs are
those of the network that is trained, so a multiplier below 1 also lowers them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation, StochasticDepth

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.core.errors import UserError

STEM_CHANNELS = 16
"""Output channels of the stem conv and the fixed first block."""


HEAD_CHANNELS = 1280
"""Channels of the 1x1 head conv before pooling."""


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "hswish": nn.Hardswish}
"""Activations by name, as :attr:`Stage.activation` stores them."""


@dataclass(frozen=True)
class StageChoices:
    """The searchable choices of one stage, and its fixed stride and activation."""

    stride: int
    """Stride of the stage's first block."""
    depths: tuple[int, ...]
    """Choices of the number of blocks."""
    widths: tuple[int, ...]
    """Choices of the output channels."""
    activation: str = "hswish"
    """A key of :data:`ACTIVATIONS`."""


STAGES: tuple[StageChoices, ...] = (
    StageChoices(2, (2, 3, 4), (24, 32), "relu"),
    StageChoices(2, (2, 3, 4, 5), (40, 48, 56), "relu"),
    StageChoices(2, (2, 3, 4, 5), (80, 96, 112)),
    StageChoices(1, (2, 3, 4, 5), (112, 128, 144)),
    StageChoices(2, (2, 3, 4, 5), (160, 192, 224)),
    StageChoices(1, (1, 2, 3), (256, 320, 384)),
)
"""The default macro skeleton: six searched stages (output strides 4, 8, 16, 16, 32, 32)."""


KERNELS: tuple[int, ...] = (3, 5)


EXPANSIONS: tuple[int, ...] = (3, 4, 6)


RESOLUTIONS: tuple[int, ...] = (192, 224, 256, 288, 320)


@dataclass(frozen=True)
class Stage:
    """One stage of inverted-residual blocks."""

    depth: int
    width: int
    kernel: int
    expansion: int
    se: bool
    stride: int = 1
    activation: str = "hswish"


@dataclass(frozen=True)
class FBNetArch:
    """An architecture of the space: its stages and its input resolution (hashable)."""

    stages: tuple[Stage, ...]
    resolution: int

    def to_dict(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "stages": [asdict(s) for s in self.stages]}


@dataclass(frozen=True)
class FBNetBudget(Budget):
    """A task budget for FBNet networks: the base :class:`Budget` plus the proxy width."""

    width_mult: float = 1.0
    """Width multiplier of every layer of the trained network (channels rounded to multiples
    of 8); below 1 for a cheaper proxy. FLOPs count the network trained, so they shrink too."""

    def __post_init__(self) -> None:
        if not self.width_mult > 0:
            raise UserError(f"width_mult must be > 0, got {self.width_mult}")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to the nearest multiple of ``divisor`` (at least ``divisor``), never
    dropping more than 10% (the MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class BlockSpec(NamedTuple):
    """One inverted-residual block, as built and as counted."""

    cin: int
    cout: int
    kernel: int
    hidden: int
    stride: int
    se: bool
    activation: str


def block_plan(arch: FBNetArch, width_mult: float = 1.0) -> list[BlockSpec]:
    """Every block of the network after the stem, in order (the fixed first block included)."""
    stem = make_divisible(STEM_CHANNELS * width_mult)
    plan = [BlockSpec(stem, stem, 3, stem, 1, False, "relu")]
    cin = stem
    for stage in arch.stages:
        cout = make_divisible(stage.width * width_mult)
        for i in range(stage.depth):
            hidden = make_divisible(cin * stage.expansion)
            plan.append(BlockSpec(cin, cout, stage.kernel, hidden, stage.stride if i == 0 else 1, stage.se,
                                  stage.activation))
            cin = cout
    return plan


def _se_channels(hidden: int) -> int:
    return make_divisible(hidden // 4)


class InvertedResidual(nn.Module):
    """MBConv: 1x1 expansion (skipped when hidden == input), kxk depthwise, optional SE, 1x1 projection."""

    def __init__(self, spec: BlockSpec, drop_path: float = 0.0) -> None:
        super().__init__()
        act = ACTIVATIONS[spec.activation]
        layers: list[nn.Module] = []
        if spec.hidden != spec.cin:
            layers.append(Conv2dNormActivation(spec.cin, spec.hidden, 1, activation_layer=act))
        layers.append(Conv2dNormActivation(spec.hidden, spec.hidden, spec.kernel, stride=spec.stride,
                                           groups=spec.hidden, activation_layer=act))
        if spec.se:
            layers.append(SqueezeExcitation(spec.hidden, _se_channels(spec.hidden), scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(spec.hidden, spec.cout, 1, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and spec.cin == spec.cout
        self.drop_path = StochasticDepth(drop_path, "row")

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return x + self.drop_path(y) if self.residual else y


class FBNetwork(nn.Module):
    """The network of an :class:`FBNetArch` (see the module docstring); any input resolution."""

    def __init__(self, arch: FBNetArch, in_channels: int = 3, num_classes: int = 1000,
                 width_mult: float = 1.0, drop_path: float = 0.0) -> None:
        super().__init__()
        plan = block_plan(arch, width_mult)
        head = make_divisible(HEAD_CHANNELS * width_mult)
        self.stem = Conv2dNormActivation(in_channels, plan[0].cin, 3, stride=2, activation_layer=nn.Hardswish)
        last = max(len(plan) - 1, 1)
        self.blocks = nn.Sequential(*(InvertedResidual(spec, drop_path * i / last) for i, spec in enumerate(plan)))
        self.head = Conv2dNormActivation(plan[-1].cout, head, 1, activation_layer=nn.Hardswish)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_fbnet(architecture: FBNetArch, in_channels: int, num_classes: int, budget: Budget,
                drop_path: float = 0.0) -> FBNetwork:
    """``Task.build_network`` for FBNet tasks: the architecture at the budget's width multiplier."""
    if not isinstance(architecture, FBNetArch):
        raise UserError(f"FBNet tasks build FBNetArch architectures, got {type(architecture).__name__}")
    width = budget.width_mult if isinstance(budget, FBNetBudget) else 1.0
    return FBNetwork(architecture, in_channels, num_classes, width, drop_path)


def _reference(depths: Sequence[int], widths: Sequence[int], kernels: Sequence[int], expansions: Sequence[int],
               se: Sequence[bool], resolution: int) -> FBNetArch:
    return FBNetArch(tuple(Stage(d, w, k, e, bool(s), st.stride, st.activation)
                           for d, w, k, e, s, st in zip(depths, widths, kernels, expansions, se, STAGES, strict=True)),
                     resolution)


REFERENCE_ARCHITECTURES: dict[str, FBNetArch] = {
    "fbnetv3-c-like": _reference((2, 4, 4, 4, 5, 2), (24, 40, 80, 112, 192, 320), (3, 5, 3, 3, 5, 5),
                                 (4, 4, 4, 4, 6, 6), (False, True, False, True, True, True), 256),
    "mobilenetv3-large-like": _reference((2, 3, 4, 2, 3, 1), (24, 40, 80, 112, 160, 256), (3, 5, 3, 3, 5, 5),
                                         (3, 3, 4, 6, 6, 6), (False, True, False, True, True, True), 224),
}
"""Named configurations of the default space. ``fbnetv3-c-like`` resembles FBNetV3-C (557M
multiply-adds at 248 px): 581M at 256 px, just under the poster's 600M. ``mobilenetv3-large-like``
resembles MobileNetV3-Large (219M at 224 px): 249M at 224 px, near the cheap end of the space."""


# -- analytic FLOPs ----------------------------------------------------------------------------
def _conv_side(side: int, stride: int) -> int:
    """Output side of a 'same'-padded conv with an odd kernel."""
    return math.ceil(side / stride)


@lru_cache(maxsize=65536)
def _block_macs(spec: BlockSpec, side: int) -> int:
    out = _conv_side(side, spec.stride)
    macs = spec.hidden * spec.kernel ** 2 * out * out + spec.hidden * spec.cout * out * out
    if spec.hidden != spec.cin:
        macs += spec.cin * spec.hidden * side * side
    if spec.se:
        macs += 2 * spec.hidden * _se_channels(spec.hidden)
    return macs


def fbnet_macs(arch: FBNetArch, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
               resolution: int | None = None) -> int:
    """Multiply-adds of :class:`FBNetwork` on one image, from the block plan (equal to ``count_macs``).

    ``resolution`` defaults to the architecture's. Per block the count is cached by its shape,
    so scoring many candidates costs a few dictionary look-ups each.
    """
    side = _conv_side(resolution or arch.resolution, 2)
    plan = block_plan(arch, width_mult)
    total = in_channels * plan[0].cin * 9 * side * side
    for spec in plan:
        total += _block_macs(spec, side)
        side = _conv_side(side, spec.stride)
    head = make_divisible(HEAD_CHANNELS * width_mult)
    return total + plan[-1].cout * head * side * side + head * num_classes
