"""Multiply-add counts against the numbers torchvision publishes with its ImageNet weights."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from ma2ml.models.flops import count_macs, count_module_macs

# torchvision's meta["_ops"] is in "GFLOPS" = billions of multiply-adds, at the 224 px crop.
PUBLISHED = [
    (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
    (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1),
    (tvm.mobilenet_v2, tvm.MobileNet_V2_Weights.IMAGENET1K_V1),
    (tvm.mobilenet_v3_large, tvm.MobileNet_V3_Large_Weights.IMAGENET1K_V1),
    (tvm.mobilenet_v3_small, tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1),
    (tvm.efficientnet_b0, tvm.EfficientNet_B0_Weights.IMAGENET1K_V1),
]


@pytest.mark.parametrize("builder, weights", PUBLISHED, ids=[builder.__name__ for builder, _ in PUBLISHED])
def test_count_macs_matches_torchvision(builder: Callable[..., nn.Module], weights: tvm.WeightsEnum) -> None:
    crop = weights.transforms().crop_size[0]
    macs, params = count_macs(lambda: builder(weights=None), (1, 3, crop, crop))
    assert macs / 1e9 == pytest.approx(weights.meta["_ops"], rel=0.02)
    assert params == weights.meta["num_params"]


def test_count_module_macs_leaves_module_untouched() -> None:
    model = tvm.resnet18(weights=None)
    model.train()
    model.fc.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert count_module_macs(model, (1, 3, 224, 224)) == count_macs(lambda: tvm.resnet18(weights=None),
                                                                     (1, 3, 224, 224))
    assert model.training and not model.fc.training and model.layer1.training
    for name, value in model.state_dict().items():
        assert value.device.type == "cpu" and torch.equal(value, before[name]), name


class _DataDependent(nn.Module):
    """Cannot run on meta: its control flow reads tensor values."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) if x.sum().item() >= 0 else self.linear(-x)


def test_count_module_macs_falls_back_to_real_forward() -> None:
    assert count_module_macs(_DataDependent(), (1, 8)) == (8 * 4, 8 * 4 + 4)


def test_count_macs_by_hand_counts_only_conv_and_linear() -> None:
    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), nn.Dropout(0.5),
                             nn.Flatten(), nn.Linear(5 * 4 * 4, 2))

    macs, params = count_macs(build, (1, 3, 4, 4))
    assert macs == 5 * 4 * 4 * 3 * 9 + 5 * 4 * 4 * 2
    assert params == 5 * 3 * 9 + 5 + 2 * 5 + 80 * 2 + 2
