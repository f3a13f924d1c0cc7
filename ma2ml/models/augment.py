"""Batched, per-sample AutoAugment on uint8 image tensors (CPU and CUDA, same code).

The AUG agent's policy is K sub-policies of two ``(op, probability level, magnitude level)``
operations over the 16 ops of AutoAugment (Cubuk et al., CVPR 2019). ``apply_policy`` applies
it to a whole batch at once: every sample draws its own sub-policy, coin flips and signs, and
the work loops over the 16 ops (and 2 op slots), never over samples.

Conventions follow ``torchvision.transforms.v2.AutoAugment`` (NEAREST interpolation, fill 0):

- geometric ops build torchvision's inverse affine matrix per sample and sample the same grid
  with ``grid_sample``; shears are about the top-left corner (torchvision's ``center=[0, 0]``),
  rotations about the image centre, translations are truncated to whole pixels;
- colour ops reproduce ``torchvision.transforms.v2.functional`` on uint8 with a per-sample
  factor (grayscale inputs leave ``Color`` as the identity, as in torchvision);
- ``Cutout`` zeroes one square per sample at a random centre, ``SamplePairing`` blends with a
  partner image: ``(1 - w) * image + w * partner``.

All randomness comes from a CPU ``torch.Generator`` passed in: draws are made on the CPU and
moved to the images' device, so a seed gives the same draws on CPU and CUDA.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ma2ml.envs.core.errors import UserError

AUG_OPS: tuple[str, ...] = (
    "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Color",
    "Posterize", "Solarize", "Contrast", "Sharpness", "Brightness", "AutoContrast", "Equalize",
    "Invert", "Cutout", "SamplePairing",
)  # this order is the token order of the AUG agent
NUM_PROBS = 11  # probability levels 0.0, 0.1, ..., 1.0
NUM_MAGNITUDES = 10  # magnitude levels 0..9

_MAX_LEVEL = NUM_MAGNITUDES - 1
_ENHANCE_OPS = frozenset({"Color", "Contrast", "Sharpness", "Brightness"})
_SIGNED_OPS = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}) | _ENHANCE_OPS
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


def magnitude_value(op: str, level: int | Tensor, height: int, width: int) -> float | Tensor:
    """The magnitude of ``op`` at ``level`` (0..9), in the unit ``apply_op`` takes, positive sign.

    AutoAugment's ranges, ``level / 9`` of the maximum: ShearX/Y shear factor 0..0.3;
    TranslateX/Y 0..150/331 of the width/height in pixels; Rotate 0..30 degrees;
    Color/Contrast/Sharpness/Brightness enhancement factor ``1 + 0..0.9`` (the negative sign,
    drawn in ``apply_policy``, gives ``1 - 0..0.9``); Posterize bits 8..4 (int, torchvision's
    rounding); Solarize threshold 256..0 (256 leaves the image unchanged); Cutout side
    ``0..20/32`` of ``min(height, width)`` pixels (int, truncated); SamplePairing blend weight
    0..0.4. AutoContrast, Equalize and Invert ignore it (0). A tensor ``level`` gives a tensor
    (float64, or long for Posterize and Cutout) of the same shape and device.
    """
    if op not in AUG_OPS:
        raise UserError(f"unknown augmentation op {op!r}; valid ops are {list(AUG_OPS)}")
    if isinstance(level, Tensor):
        lvl: int | Tensor = level.long()
        if lvl.numel() and (int(lvl.min()) < 0 or int(lvl.max()) > _MAX_LEVEL):
            raise UserError(f"magnitude levels must be in 0..{_MAX_LEVEL}")
    else:
        if not 0 <= int(level) <= _MAX_LEVEL:
            raise UserError(f"magnitude level must be in 0..{_MAX_LEVEL}, got {level}")
        lvl = int(level)
    frac = lvl.double() / _MAX_LEVEL if isinstance(lvl, Tensor) else lvl / _MAX_LEVEL
    if op in ("ShearX", "ShearY"):
        return frac * 0.3
    if op == "TranslateX":
        return frac * (150.0 / 331.0 * width)
    if op == "TranslateY":
        return frac * (150.0 / 331.0 * height)
    if op == "Rotate":
        return frac * 30.0
    if op in _ENHANCE_OPS:
        return 1.0 + frac * 0.9
    if op == "Posterize":
        bits = 8.0 - frac * 4.0
        return bits.round().long() if isinstance(bits, Tensor) else int(round(bits))
    if op == "Solarize":
        return 256.0 - frac * 256.0
    if op == "Cutout":
        return lvl * (20 * min(height, width)) // (32 * _MAX_LEVEL)
    if op == "SamplePairing":
        return frac * 0.4
    return frac * 0.0 if isinstance(frac, Tensor) else 0.0


def apply_op(
    images: Tensor,
    op: str,
    magnitude: Tensor | float,
    partner: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Apply ``op`` to a uint8 batch (N, C, H, W), C in {1, 3}, with a per-sample magnitude.

    ``magnitude`` (N,) (or a scalar for all) is *signed* and in the op's natural unit: shear
    factor, pixels, degrees, enhancement factor, bits, threshold, cutout side, blend weight.
    ``partner`` (N, C, H, W) is required by SamplePairing; ``generator`` (a CPU generator, for
    the square centres) by Cutout. Returns a new uint8 tensor on the images' device.
    """
    _check_images(images)
    if op not in AUG_OPS:
        raise UserError(f"unknown augmentation op {op!r}; valid ops are {list(AUG_OPS)}")
    mag = torch.as_tensor(magnitude).detach().to("cpu", torch.float64)
    if mag.dim() == 0:
        mag = mag.expand(images.shape[0])
    if mag.shape != (images.shape[0],):
        raise UserError(f"magnitude must be a scalar or of shape ({images.shape[0]},), got {tuple(mag.shape)}")
    centres = None
    if op == "Cutout":
        if generator is None:
            raise UserError("Cutout draws random centres: pass a CPU torch.Generator")
        centres = _draw_centres(images.shape, generator)
    return _apply(images, op, mag, partner, centres)


def apply_policy(images: Tensor, policy: Tensor, generator: torch.Generator) -> Tensor:
    """Apply an AutoAugment policy per sample to a uint8 batch (N, C, H, W).

    ``policy`` is a long tensor (K, 2, 3) of (op index into ``AUG_OPS``, prob level 0..10,
    magnitude level 0..9). Each sample draws one of the K sub-policies uniformly; each of its
    two ops is applied in order with probability ``level / 10`` at its magnitude, with a random
    sign for the signed ops (shear, translate, rotate, enhance). SamplePairing partners are a
    random permutation of the input batch. The number of draws from ``generator`` (a CPU
    generator) does not depend on the policy; CPU and CUDA see the same draws.
    """
    _check_images(images)
    policy = torch.as_tensor(policy).detach().to("cpu", torch.long)
    if policy.dim() != 3 or policy.shape[1:] != (2, 3) or policy.shape[0] == 0:
        raise UserError(f"policy must have shape (K, 2, 3) with K >= 1, got {tuple(policy.shape)}")
    ops, probs, levels = policy.unbind(-1)
    if ops.min() < 0 or ops.max() >= len(AUG_OPS):
        raise UserError(f"op indices must be in 0..{len(AUG_OPS) - 1}")
    if probs.min() < 0 or probs.max() >= NUM_PROBS:
        raise UserError(f"probability levels must be in 0..{NUM_PROBS - 1}")
    if levels.min() < 0 or levels.max() > _MAX_LEVEL:
        raise UserError(f"magnitude levels must be in 0..{_MAX_LEVEL}")

    n, _, height, width = images.shape
    chosen = torch.randint(policy.shape[0], (n,), generator=generator)
    coins = torch.rand(2, n, generator=generator, dtype=torch.float64)
    signs = torch.where(torch.rand(2, n, generator=generator) < 0.5, -1.0, 1.0).double()
    partners = torch.randperm(n, generator=generator).to(images.device)
    centres = [_draw_centres(images.shape, generator) for _ in range(2)]

    # Each slot groups the samples by op with one gather and runs every op on its contiguous group,
    # in place; the rows stay grouped between slots (``arrangement``: the sample in each row) and
    # are put back in sample order once at the end.
    out, arrangement = images, torch.arange(n)
    for slot in range(2):
        applied = coins[slot] < probs[chosen, slot].double() / (NUM_PROBS - 1)
        op_idx = torch.where(applied, ops[chosen, slot], -1)  # -1: this slot leaves the sample as it is
        counts = torch.bincount(op_idx + 1, minlength=len(AUG_OPS) + 1).tolist()
        if counts[0] == n:
            continue
        order = torch.argsort(op_idx, stable=True)  # samples grouped by op, in sample order within a group
        out = out.index_select(0, torch.argsort(arrangement)[order].to(images.device))
        arrangement, start = order, counts[0]
        for j, op in enumerate(AUG_OPS):
            sel, group = order[start:start + counts[j + 1]], out[start:start + counts[j + 1]]
            start += counts[j + 1]
            if sel.numel() == 0:
                continue
            mag = magnitude_value(op, levels[chosen, slot][sel], height, width)
            mag = _signed(op, torch.as_tensor(mag, dtype=torch.float64), signs[slot, sel])
            partner = images.index_select(0, partners.index_select(0, sel.to(images.device))) \
                if op == "SamplePairing" else None
            sub_centres = (centres[slot][0][sel], centres[slot][1][sel]) if op == "Cutout" else None
            group.copy_(_apply(group, op, mag, partner, sub_centres))
    return out.index_select(0, torch.argsort(arrangement).to(images.device))


def random_crop_flip(images: Tensor, padding: int, generator: torch.Generator, flip: bool = True) -> Tensor:
    """Zero-pad by ``padding``, crop back to (H, W) at a random offset per sample, then flip
    horizontally with probability 0.5 per sample (if ``flip``)."""
    if images.dim() != 4:
        raise UserError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if padding < 0:
        raise UserError(f"padding must be >= 0, got {padding}")
    n, _, height, width = images.shape
    offsets = torch.randint(2 * padding + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    device = images.device
    rows = (offsets[0, :, None] + torch.arange(height)).to(device)  # (N, H), padded coordinates
    cols = offsets[1, :, None] + torch.arange(width)
    if flip:
        cols = torch.where(flips[:, None], cols.flip(-1), cols)
    cols = cols.to(device)
    padded = F.pad(images, (padding, padding, padding, padding))
    batch = torch.arange(n, device=device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def cutout(images: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """DeVries & Taylor cutout: zero one ``size`` x ``size`` square per sample, centred at a
    uniformly random pixel and clipped at the borders."""
    if images.dim() != 4:
        raise UserError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if size < 0:
        raise UserError(f"cutout size must be >= 0, got {size}")
    sides = torch.full((images.shape[0],), size, dtype=torch.long)
    return _erase_squares(images, sides, _draw_centres(images.shape, generator))


def _check_images(images: Tensor) -> None:
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise UserError(f"images must be (N, C, H, W) with C in (1, 3), got shape {tuple(images.shape)}")


def _signed(op: str, mag: Tensor, sign: Tensor) -> Tensor:
    """Apply a +/-1 sign to a positive-sign magnitude: enhance factors mirror around 1."""
    if op in _ENHANCE_OPS:
        return 1.0 + sign * (mag - 1.0)
    if op in _SIGNED_OPS:
        return sign * mag
    return mag


def _draw_centres(shape: torch.Size, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    n, _, height, width = shape
    return torch.randint(height, (n,), generator=generator), torch.randint(width, (n,), generator=generator)


def _apply(
    images: Tensor, op: str, mag: Tensor, partner: Tensor | None, centres: tuple[Tensor, Tensor] | None
) -> Tensor:
    """Dispatch one op; ``mag`` is a CPU float64 (N,) tensor in the op's natural unit."""
    if images.shape[0] == 0:
        return images.clone()
    zeros = torch.zeros_like(mag)
    height, width = images.shape[-2:]
    if op == "ShearX":  # torchvision: affine(shear=[degrees(atan(m)), 0], center=[0, 0])
        theta = _inverse_affine(zeros, torch.atan(mag), zeros, zeros, zeros, -0.5 * width, -0.5 * height)
        return _warp(images, theta)
    if op == "ShearY":
        theta = _inverse_affine(zeros, zeros, torch.atan(mag), zeros, zeros, -0.5 * width, -0.5 * height)
        return _warp(images, theta)
    if op == "TranslateX":  # torchvision: affine(translate=[int(m), 0])
        return _warp(images, _inverse_affine(zeros, zeros, zeros, mag.trunc(), zeros, 0.0, 0.0))
    if op == "TranslateY":
        return _warp(images, _inverse_affine(zeros, zeros, zeros, zeros, mag.trunc(), 0.0, 0.0))
    if op == "Rotate":  # torchvision: rotate(angle) == inverse affine of -(angle % 360) about the centre
        return _warp(images, _inverse_affine(-torch.remainder(mag, 360.0), zeros, zeros, zeros, zeros, 0.0, 0.0))
    if op == "Posterize":
        bits = mag.round().long().clamp(0, 8).to(images.device)
        mask = ((255 << (8 - bits)) & 255).to(torch.uint8).view(-1, 1, 1, 1)
        return images & mask
    if op == "Solarize":
        # integer pixels: v >= t exactly when v >= ceil(t); an int16 threshold avoids float compares
        threshold = mag.ceil().clamp(0, 256).to(device=images.device, dtype=torch.int16).view(-1, 1, 1, 1)
        return torch.where(images >= threshold, images.bitwise_not(), images)
    if op == "Invert":
        return images.bitwise_not()
    if op == "AutoContrast":
        return _autocontrast(images)
    if op == "Equalize":
        return _equalize(images)
    if op == "Cutout":
        if centres is None:
            raise UserError("Cutout needs square centres")
        return _erase_squares(images, mag.round().long().clamp(min=0), centres)
    if op == "SamplePairing":
        if partner is None or partner.shape != images.shape:
            raise UserError(f"SamplePairing needs a partner batch of shape {tuple(images.shape)}")
        w = _per_sample(mag, images.device)
        return (images * (1.0 - w) + partner * w).round_().clamp_(0, 255).to(torch.uint8)
    if mag.min() < 0:
        raise UserError(f"{op} needs non-negative enhancement factors, got {mag.min().item()}")
    if op == "Brightness":
        return images.mul(_per_sample(mag, images.device)).clamp_(0, 255).to(torch.uint8)
    if op == "Color":
        if images.shape[1] == 1:
            return images.clone()
        return _blend(images, _grayscale(images).floor_(), mag)
    if op == "Contrast":
        gray = _grayscale(images).floor_() if images.shape[1] == 3 else images.float()
        return _blend(images, gray.mean(dim=(-3, -2, -1), keepdim=True), mag)
    return _sharpness(images, mag)  # op == "Sharpness"


def _per_sample(values: Tensor, device: torch.device) -> Tensor:
    return values.to(device=device, dtype=torch.float32).view(-1, 1, 1, 1)


def _grayscale(images: Tensor) -> Tensor:
    """torchvision's float grayscale of a uint8 RGB batch, (N, 1, H, W)."""
    r, g, b = images.unbind(dim=-3)
    return r.mul(_GRAY_WEIGHTS[0]).add_(g, alpha=_GRAY_WEIGHTS[1]).add_(b, alpha=_GRAY_WEIGHTS[2]).unsqueeze(-3)


def _blend(images: Tensor, other: Tensor, ratio: Tensor) -> Tensor:
    """``ratio * images + (1 - ratio) * other`` per sample, clamped and truncated to uint8."""
    r, alpha = _per_sample(ratio, images.device), _per_sample(1.0 - ratio, images.device)
    return torch.addcmul(images.mul(r), other, alpha).clamp_(0, 255).to(torch.uint8)


def _sharpness(images: Tensor, factor: Tensor) -> Tensor:
    n, c, height, width = images.shape
    if height <= 2 or width <= 2:
        return images.clone()
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], device=images.device).expand(c, 1, 3, 3)
    output = images.float()
    # channels_last runs oneDNN's fast depthwise kernel (same sums: checked bit for bit against NCHW on CPU)
    blurred = F.conv2d(output.contiguous(memory_format=torch.channels_last), kernel, groups=c).round_()
    view = output[..., 1:-1, 1:-1]
    view.addcmul_(blurred.sub_(view), _per_sample(1.0 - factor, images.device))
    return output.clamp_(0, 255).to(torch.uint8)


def _autocontrast(images: Tensor) -> Tensor:
    """torchvision's autocontrast: stretch each channel of each sample to 0..255."""
    x = images.float()
    lo, hi = x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)
    flat = hi == lo
    inv_scale = torch.where(flat, 1.0, (hi - lo).mul_(1.0 / 255.0))
    lo = torch.where(flat, 0.0, lo)
    return (x - lo).div_(inv_scale).clamp_(0, 255).to(torch.uint8)


def _equalize(images: Tensor) -> Tensor:
    """PIL/torchvision histogram equalization per sample and channel (one batched histogram)."""
    flat = images.flatten(start_dim=-2).long()  # (N, C, HW)
    hist = torch.zeros(images.shape[:-2] + (256,), dtype=torch.int32, device=images.device)
    hist.scatter_add_(-1, flat, torch.ones_like(flat, dtype=torch.int32))
    cum = hist.cumsum(dim=-1)
    last = cum.argmax(dim=-1, keepdim=True)  # the largest value present
    step = torch.div(flat.shape[-1] - hist.gather(-1, last), 255, rounding_mode="floor")
    lut = torch.div(cum[..., :-1] + step // 2, step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[..., :1]), lut], dim=-1).to(torch.uint8)
    equalized = lut.gather(-1, flat).view_as(images)
    return torch.where(step.unsqueeze(-1) != 0, equalized, images)


def _erase_squares(images: Tensor, sides: Tensor, centres: tuple[Tensor, Tensor]) -> Tensor:
    """Zero a ``side`` x ``side`` square per sample whose centre pixel is ``centres`` (clipped)."""
    height, width = images.shape[-2:]
    device = images.device
    sides = sides.to(device)
    top = centres[0].to(device) - sides // 2
    left = centres[1].to(device) - sides // 2
    ys, xs = torch.arange(height, device=device), torch.arange(width, device=device)
    in_rows = (ys >= top[:, None]) & (ys < (top + sides)[:, None])
    in_cols = (xs >= left[:, None]) & (xs < (left + sides)[:, None])
    return images.masked_fill(in_rows[:, None, :, None] & in_cols[:, None, None, :], 0)


def _inverse_affine(
    angle: Tensor, shear_x: Tensor, shear_y: Tensor, tx: Tensor, ty: Tensor, cx: float, cy: float
) -> Tensor:
    """torchvision's ``_get_inverse_affine_matrix`` (scale 1), batched: (N, 2, 3) float64.

    ``angle`` in degrees, shears in radians, ``(cx, cy)`` relative to the image centre.
    """
    rot = angle * (math.pi / 180.0)
    cos_sy = torch.cos(shear_y)
    tan_sx = torch.tan(shear_x)
    a = torch.cos(rot - shear_y) / cos_sy
    b = -(a * tan_sx + torch.sin(rot))
    c = torch.sin(rot - shear_y) / cos_sy
    d = torch.cos(rot) - c * tan_sx
    cx_tx, cy_ty = cx + tx, cy + ty
    m0, m1, m3, m4 = d, -b, -c, a
    m2 = cx - m0 * cx_tx - m1 * cy_ty
    m5 = cy - m3 * cx_tx - m4 * cy_ty
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=-1).view(-1, 2, 3)


def _warp(images: Tensor, theta: Tensor) -> Tensor:
    """Nearest-neighbour warp with per-sample inverse matrices on torchvision's grid, fill 0.

    Policies use few distinct matrices (one per op, level and sign), so the sampling grid is
    computed once per distinct matrix (``bmm`` is exact per batch element) and gathered.
    """
    n, _, height, width = images.shape
    device = images.device
    distinct, inverse = torch.unique(theta.cpu().float().view(n, 6), dim=0, return_inverse=True)  # no device sync
    theta, inverse = distinct.view(-1, 2, 3).to(device), inverse.to(device)
    base = torch.empty(1, height, width, 3, device=device)
    base[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=device))
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=device)
    base[..., 1].copy_(ys.unsqueeze(-1))
    base[..., 2].fill_(1)
    scale = torch.tensor([0.5 * width, 0.5 * height], device=device)
    grid = base.view(1, height * width, 3).expand(len(theta), -1, -1).bmm(theta.transpose(1, 2).div(scale))
    grid = grid.index_select(0, inverse).view(n, height, width, 2)
    out = F.grid_sample(images.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.round_().to(torch.uint8)
