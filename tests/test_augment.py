"""Tests of ma2ml.models.augment: parity with torchvision's AutoAugment ops, per-sample policies,
determinism, crop/flip and cutout.

Tolerances vs torchvision (measured on CPU with torch 2.14 / torchvision 0.29: every op matched
exactly): geometric ops >= 99% of pixels equal per image, colour ops max abs diff <= 1 level.
"""
from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from ma2ml.models.augment import (AUG_OPS, NUM_MAGNITUDES, NUM_PROBS, apply_op, apply_policy, cutout,
                                       magnitude_value, random_crop_flip)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
]
SHAPES = [(8, 3, 32, 32), (4, 1, 8, 8)]
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
ENHANCE = ("Color", "Contrast", "Sharpness", "Brightness")
SIGNED = GEOMETRIC + ENHANCE
TORCHVISION_OPS = AUG_OPS[:14]  # all but Cutout and SamplePairing
LEVELS = (0, 3, 6, 9)
GEOMETRIC_MIN_EQUAL = 0.99  # fraction of equal pixels per image
COLOUR_MAX_DIFF = 1  # uint8 levels


def _images(shape: tuple[int, ...], device: str, seed: int = 0, low: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, 256, shape, generator=g, dtype=torch.uint8).to(device)


def _signed(op: str, value: float, sign: float) -> float:
    if op in ENHANCE:
        return 1.0 + sign * (value - 1.0)
    return sign * value if op in SIGNED else value


def _torchvision(image: torch.Tensor, op: str, value: float) -> torch.Tensor:
    """torchvision's AutoAugment on one image, with ``value`` in apply_op's natural unit."""
    if op == "Solarize" and value > 255:
        return image.clone()  # threshold 256 (level 0): nothing to solarize
    magnitude = {
        "Posterize": int(value),
        "Solarize": value / 255.0,
    }.get(op, value - 1.0 if op in ENHANCE else value)
    aa = v2.AutoAugment()
    return aa._apply_image_or_video_transform(image, op, magnitude, interpolation=aa.interpolation, fill=aa._fill)


def _assert_close_to_torchvision(ours: torch.Tensor, ref: torch.Tensor, op: str) -> None:
    diff = (ours.int() - ref.int()).abs()
    if op in GEOMETRIC:
        assert (diff == 0).float().mean().item() >= GEOMETRIC_MIN_EQUAL, op
    else:
        assert diff.max().item() <= COLOUR_MAX_DIFF, op


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", TORCHVISION_OPS)
def test_apply_op_matches_torchvision(device: str, shape: tuple[int, ...], op: str) -> None:
    images = _images(shape, device)
    n, _, h, w = shape
    levels = [LEVELS[i % len(LEVELS)] for i in range(n)]
    for sign in (1.0, -1.0) if op in SIGNED else (1.0,):
        values = [_signed(op, float(magnitude_value(op, lv, h, w)), sign) for lv in levels]
        out = apply_op(images, op, torch.tensor(values))
        assert out.dtype == torch.uint8 and out.shape == images.shape and out.device == images.device
        for i in range(n):
            _assert_close_to_torchvision(out[i], _torchvision(images[i], op, values[i]), op)


def test_magnitude_value_ranges() -> None:
    assert magnitude_value("ShearX", 9, 32, 32) == pytest.approx(0.3)
    assert magnitude_value("TranslateX", 9, 20, 40) == pytest.approx(150 / 331 * 40)
    assert magnitude_value("TranslateY", 9, 20, 40) == pytest.approx(150 / 331 * 20)
    assert magnitude_value("Rotate", 9, 32, 32) == pytest.approx(30.0)
    assert magnitude_value("Brightness", 0, 32, 32) == pytest.approx(1.0)
    assert magnitude_value("Color", 9, 32, 32) == pytest.approx(1.9)
    assert [magnitude_value("Posterize", lv, 32, 32) for lv in range(10)] == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert magnitude_value("Solarize", 0, 32, 32) == 256.0 and magnitude_value("Solarize", 9, 32, 32) == 0.0
    assert magnitude_value("Cutout", 9, 32, 32) == 20 and magnitude_value("Cutout", 0, 32, 32) == 0
    assert magnitude_value("SamplePairing", 9, 32, 32) == pytest.approx(0.4)
    levels = torch.arange(NUM_MAGNITUDES)
    for op in AUG_OPS:
        as_tensor = magnitude_value(op, levels, 24, 32)
        assert torch.allclose(torch.as_tensor(as_tensor).double(),
                              torch.tensor([float(magnitude_value(op, lv, 24, 32)) for lv in range(10)]).double())
    with pytest.raises(ValueError):
        magnitude_value("ShearX", NUM_MAGNITUDES, 32, 32)
    with pytest.raises(ValueError):
        magnitude_value("Blur", 0, 32, 32)


@pytest.mark.parametrize("device", DEVICES)
def test_sample_pairing_blends(device: str) -> None:
    images, partner = _images((8, 3, 16, 16), device, 1), _images((8, 3, 16, 16), device, 2)
    weights = torch.linspace(0.0, 0.4, 8)
    out = apply_op(images, "SamplePairing", weights, partner=partner)
    w = weights.to(device).view(-1, 1, 1, 1)
    expected = ((1 - w) * images + w * partner).round().clamp(0, 255).to(torch.uint8)
    assert (out.int() - expected.int()).abs().max().item() <= 1
    assert torch.equal(out[0], images[0])
    with pytest.raises(ValueError):
        apply_op(images, "SamplePairing", weights)


def _zero_box(image: torch.Tensor) -> tuple[int, int]:
    """Height and width of the zeroed region of a (C, H, W) image with no zeros elsewhere;
    checks that the region is a rectangle covering all channels."""
    zeros = image == 0
    assert torch.equal(zeros, zeros[:1].expand_as(zeros)), "cutout must zero all channels"
    rows, cols = zeros[0].any(dim=1).nonzero().flatten(), zeros[0].any(dim=0).nonzero().flatten()
    if rows.numel() == 0:
        return 0, 0
    height, width = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
    assert int(zeros[0].sum()) == height * width, "cutout region must be a rectangle"
    return height, width


@pytest.mark.parametrize("device", DEVICES)
def test_cutout_op_and_function(device: str) -> None:
    images = _images((16, 3, 12, 12), device, low=1)
    sides = torch.tensor([0, 1, 4, 5] * 4)
    out = apply_op(images, "Cutout", sides, generator=torch.Generator().manual_seed(0))
    for i in range(16):
        h, w = _zero_box(out[i])
        assert h <= sides[i] and w <= sides[i]
    assert torch.equal(out[0], images[0])
    with pytest.raises(ValueError):
        apply_op(images, "Cutout", sides)

    a = cutout(images, 6, torch.Generator().manual_seed(3))
    b = cutout(images, 6, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == images.shape and a.device == images.device
    boxes = [_zero_box(a[i]) for i in range(16)]
    assert all(0 < h <= 6 and 0 < w <= 6 for h, w in boxes) and (6, 6) in boxes
    assert torch.equal(cutout(images, 0, torch.Generator().manual_seed(3)), images)


def _random_policy(k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([
        torch.randint(len(AUG_OPS), (k, 2), generator=g),
        torch.randint(NUM_PROBS, (k, 2), generator=g),
        torch.randint(NUM_MAGNITUDES, (k, 2), generator=g),
    ], dim=-1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_apply_policy_contract_and_determinism(device: str, shape: tuple[int, ...]) -> None:
    images = _images(shape, device)
    before = images.clone()
    policy = _random_policy(5, 0)
    policy[:, :, 1] = torch.randint(6, NUM_PROBS, (5, 2), generator=torch.Generator().manual_seed(1))
    a = apply_policy(images, policy, torch.Generator().manual_seed(7))
    b = apply_policy(images, policy, torch.Generator().manual_seed(7))
    c = apply_policy(images, policy, torch.Generator().manual_seed(8))
    assert a.dtype == torch.uint8 and a.shape == images.shape and a.device == images.device
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, images)
    assert torch.equal(images, before), "input must not be modified"


@pytest.mark.parametrize("device", DEVICES)
def test_apply_policy_prob_zero_is_identity(device: str) -> None:
    images = _images((8, 3, 16, 16), device)
    policy = _random_policy(5, 3)
    policy[:, :, 1] = 0
    assert torch.equal(apply_policy(images, policy, torch.Generator().manual_seed(0)), images)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", AUG_OPS)
def test_apply_policy_prob_one_equals_apply_op(device: str, op: str) -> None:
    images = _images((8, 3, 16, 16), device, low=1)
    level = 6
    policy = torch.tensor([[[AUG_OPS.index(op), NUM_PROBS - 1, level], [0, 0, 0]]])
    out = apply_policy(images, policy, torch.Generator().manual_seed(0))
    value = float(magnitude_value(op, level, 16, 16))
    if op == "Cutout":
        assert all(h <= value and w <= value for h, w in (_zero_box(out[i]) for i in range(8)))
        assert not torch.equal(out, images)
    elif op == "SamplePairing":  # each sample is a blend with some sample of the batch
        candidates = [apply_op(images, op, value, partner=images[j].expand_as(images)) for j in range(8)]
        assert all(any(torch.equal(out[i], c[i]) for c in candidates) for i in range(8))
    else:
        signs = (1.0, -1.0) if op in SIGNED else (1.0,)
        options = [apply_op(images, op, _signed(op, value, s)) for s in signs]
        assert all(any(torch.equal(out[i], o[i]) for o in options) for i in range(8))


def test_apply_policy_rates_and_order() -> None:
    images = _images((2000, 1, 2, 2), "cpu")
    invert = AUG_OPS.index("Invert")
    half = torch.tensor([[[invert, 5, 0], [invert, 0, 0]]])
    changed = (apply_policy(images, half, torch.Generator().manual_seed(0)) != images).flatten(1).any(1)
    assert abs(changed.float().mean().item() - 0.5) < 0.05
    two_subs = torch.tensor([[[invert, 10, 0], [invert, 0, 0]], [[invert, 0, 0], [invert, 0, 0]]])
    changed = (apply_policy(images, two_subs, torch.Generator().manual_seed(1)) != images).flatten(1).any(1)
    assert abs(changed.float().mean().item() - 0.5) < 0.05

    posterize = AUG_OPS.index("Posterize")
    small = images[:16]
    ordered = torch.tensor([[[posterize, 10, 9], [invert, 10, 0]]])
    expected = apply_op(apply_op(small, "Posterize", 4), "Invert", 0)
    assert torch.equal(apply_policy(small, ordered, torch.Generator()), expected)


def test_apply_policy_rejects_bad_input() -> None:
    images = _images((4, 3, 8, 8), "cpu")
    with pytest.raises(ValueError):
        apply_policy(images, torch.zeros(5, 3, 2, dtype=torch.long), torch.Generator())
    with pytest.raises(ValueError):
        apply_policy(images, torch.tensor([[[len(AUG_OPS), 5, 5], [0, 0, 0]]]), torch.Generator())
    with pytest.raises(ValueError):
        apply_policy(images, torch.tensor([[[0, NUM_PROBS, 5], [0, 0, 0]]]), torch.Generator())
    with pytest.raises(TypeError):
        apply_policy(images.float(), _random_policy(2, 0), torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_apply_policy_cpu_and_cuda_agree() -> None:
    images = _images((64, 3, 32, 32), "cpu")
    policy = _random_policy(5, 4)
    cpu = apply_policy(images, policy, torch.Generator().manual_seed(5))
    cuda = apply_policy(images.cuda(), policy, torch.Generator().manual_seed(5)).cpu()
    assert (cpu == cuda).float().mean().item() >= GEOMETRIC_MIN_EQUAL
    assert (cpu.int() - cuda.int()).abs().float().mean().item() < 1.0


@pytest.mark.parametrize("device", DEVICES)
def test_random_crop_flip(device: str) -> None:
    images = _images((8, 3, 10, 12), device)
    out = random_crop_flip(images, 2, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == images.shape and out.device == images.device
    assert torch.equal(out, random_crop_flip(images, 2, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, random_crop_flip(images, 2, torch.Generator().manual_seed(1)))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(8):
        crops = [padded[i, :, dy:dy + 10, dx:dx + 12] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)
    assert torch.equal(random_crop_flip(images, 0, torch.Generator(), flip=False), images)
    flipped = random_crop_flip(images, 0, torch.Generator().manual_seed(0))
    is_flipped = [torch.equal(flipped[i], images[i].flip(-1)) for i in range(8)]
    assert all(f or torch.equal(flipped[i], images[i]) for i, f in enumerate(is_flipped))
    assert 0 < sum(is_flipped) < 8  # one coin per sample: seed 0 flips some, not all
