"""The FBNetV3-style ImageNet space: FLOPs range, reference configuration, fast scorer, network."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ma2ml.envs.core.budget import Budget
from ma2ml.models.fbnet import (REFERENCE_ARCHITECTURES, STAGES, FBNetArch, FBNetBudget, FBNetwork, Stage,
                                     StageChoices, block_plan, build_fbnet, fbnet_macs, make_divisible)
from ma2ml.models.flops import count_macs
from ma2ml.envs.spaces import HParams, Recipe
from ma2ml.envs.spaces.fbnet import FBNetSpace
from ma2ml.envs.tasks import DEFAULT_GENOTYPE

C = 600e6


def counted(arch: FBNetArch, num_classes: int = 1000, width_mult: float = 1.0) -> int:
    return count_macs(lambda: FBNetwork(arch, 3, num_classes, width_mult), (1, 3, arch.resolution, arch.resolution))[0]


def test_random_architectures_span_the_constraint():
    space = FBNetSpace()
    rng = np.random.default_rng(0)
    flops = np.array([space.flops(space.sample(rng)) for _ in range(3000)])
    assert flops.min() < 300e6 and flops.max() > 1000e6
    below = float(np.mean(flops <= C))
    assert 0.3 < below < 0.7, f"C = 600M should split the space, {below:.0%} of it is below"


def test_reference_configuration_near_600m():
    arch = REFERENCE_ARCHITECTURES["fbnetv3-c-like"]
    macs = counted(arch)
    assert abs(macs - C) / C < 0.10, macs
    assert FBNetSpace().decode(FBNetSpace().encode(arch)) == arch


def test_fast_scorer_equals_count_macs():
    space = FBNetSpace()
    rng = np.random.default_rng(1)
    cases = [(space.decode(space.sample(rng)), classes, width) for classes, width in
             ((1000, 1.0), (200, 1.0), (10, 0.25), (1000, 0.75))]
    cases.append((REFERENCE_ARCHITECTURES["mobilenetv3-large-like"], 1000, 1.0))
    for arch, classes, width in cases:
        assert fbnet_macs(arch, classes, width_mult=width) == counted(arch, classes, width), (arch, classes, width)
    arch = cases[0][0]
    assert fbnet_macs(arch, resolution=100) == count_macs(lambda: FBNetwork(arch), (1, 3, 100, 100))[0]


def test_tokens_roundtrip_and_layout():
    space = FBNetSpace()
    assert space.kind == "nas"
    assert len(space.nvec) == 5 * len(STAGES) + 1
    assert space.token_names[:5] == ("s1.depth", "s1.width", "s1.kernel", "s1.expansion", "s1.se")
    assert space.token_names[-1] == "resolution"
    rng = np.random.default_rng(2)
    for _ in range(20):
        tokens = space.sample(rng)
        arch = space.decode(tokens)
        np.testing.assert_array_equal(space.encode(arch), tokens)
        assert [s.stride for s in arch.stages] == [s.stride for s in STAGES]
        assert space.flops(tokens) == space.flops(arch)
    with pytest.raises(ValueError, match=r"token 30 \(resolution\) = 9 is out of range; valid values are 0..4"):
        space.decode(np.r_[np.zeros(30, dtype=int), 9])
    bad = FBNetArch(arch.stages, 100)
    with pytest.raises(ValueError, match="resolution = 100 is not in the space"):
        space.encode(bad)


def test_apply_sets_architecture_and_input_size():
    space = FBNetSpace()
    arch = REFERENCE_ARCHITECTURES["fbnetv3-c-like"]
    recipe = Recipe(architecture=None, hparams=HParams())
    space.apply(arch, recipe)
    assert recipe.architecture is arch and recipe.input_size == 256
    assert "256px" in space.describe(arch) and "5x192 k5 e6 se" in space.describe(arch)


def test_space_validation():
    with pytest.raises(ValueError, match="kernels must be odd"):
        FBNetSpace(kernels=(3, 4))
    with pytest.raises(ValueError, match="activation 'gelu'"):
        FBNetSpace(stages=(StageChoices(2, (1, 2), (16, 24), "gelu"),))
    with pytest.raises(ValueError, match="resolutions must be positive integers"):
        FBNetSpace(resolutions=())
    with pytest.raises(ValueError, match="width_mult must be > 0"):
        FBNetBudget(width_mult=0.0)
    with pytest.raises(ValueError, match="FBNet tasks build FBNetArch"):
        build_fbnet(DEFAULT_GENOTYPE, 3, 10, Budget())


def test_block_plan_and_residuals():
    arch = FBNetArch((Stage(2, 24, 3, 4, False, 2, "relu"), Stage(3, 40, 5, 6, True, 1)), 64)
    plan = block_plan(arch)
    assert len(plan) == 1 + 2 + 3
    assert plan[1].stride == 2 and plan[2].stride == 1 and plan[3].stride == 1
    assert plan[1].hidden == 64 and plan[3].hidden == make_divisible(24 * 6)
    net = FBNetwork(arch, 3, 5)
    assert [b.residual for b in net.blocks] == [True, False, True, False, True, True]
    rates = [round(b.drop_path.p, 3) for b in FBNetwork(arch, 3, 5, drop_path=0.5).blocks]
    assert rates == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_network_trains_at_any_resolution():
    torch.manual_seed(0)
    arch = FBNetSpace(resolutions=(40,)).decode(FBNetSpace(resolutions=(40,)).sample(np.random.default_rng(3)))
    net = build_fbnet(arch, 3, 7, FBNetBudget(width_mult=0.25), drop_path=0.2)
    assert net.classifier.in_features == make_divisible(1280 * 0.25)
    for side in (40, 33):
        out = net(torch.randn(2, 3, side, side))
        assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_make_divisible():
    assert [make_divisible(v) for v in (3, 16, 20, 21, 36, 100, 1280 * 0.25)] == [8, 16, 24, 24, 40, 104, 320]
    assert make_divisible(10.0) == 16  # 8 would drop more than 10%
