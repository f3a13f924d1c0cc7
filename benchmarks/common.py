"""Shared parts of the throughput benchmarks: the policy both sides apply, the images, the clocks, and
the NAS cells' kernels as they were before issue 28 (:func:`issue28_kernels`).

Both sides of a comparison apply torchvision's published AutoAugment CIFAR-10 policy (25
sub-policies): torchvision through ``transforms.AutoAugment(AutoAugmentPolicy.CIFAR10)``, ma2ml
through the same sub-policies as an AUG-agent policy. Its ops, probabilities and magnitude bins
map one to one (torchvision's 10 magnitude bins are ma2ml's 10 levels).
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms

from ma2ml.envs.spaces import AugOp, AugPolicy


def torchvision_cifar10_policy() -> AugPolicy:
    """torchvision's AutoAugment CIFAR-10 policy as an AUG policy (magnitude-free ops get level 0)."""
    subs = transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10).policies
    return AugPolicy(tuple(
        tuple(AugOp(op, float(prob), int(level or 0)) for op, prob, level in sub) for sub in subs
    ))


def random_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-shaped data: ``n`` uint8 images (n, 3, 32, 32) and int64 labels in 0..9."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (n,), generator=g))


def best_seconds(runs: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float] = time.perf_counter,
                 sync: Callable[[], None] | None = None) -> dict[str, float]:
    """Fewest seconds of each run over ``repeats`` rounds on ``clock``; a round runs each once, in
    turn, so a passing load on a shared machine hits all of them alike. ``sync`` waits for a device."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            start = clock()
            fn()
            if sync is not None:
                sync()
            best[name] = min(best[name], clock() - start)
    return best


def device_sync(device: torch.device) -> Callable[[], None] | None:
    """What waits for queued work on ``device`` (None on the CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else None


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``; one ``SystemExit`` naming the problem."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise SystemExit(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is available")
    return torch.device(name)


def rate_line(name: str, images: int, seconds: float) -> str:
    """One aligned row: ``name  images/s``."""
    return f"  {name:52s} {images / seconds:>12,.0f} images/s"


def verdict(ratio: float, target: float, applies: bool) -> str:
    """`` (target Nx met)`` / `` (TARGET Nx MISSED)`` where the target applies, else empty."""
    if not applies:
        return ""
    return f" (target {target:g}x met)" if ratio >= target else f" (TARGET {target:g}x MISSED)"


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second of ``fn`` (returns how many items it did), repeated for ``seconds`` after one warm-up."""
    fn()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += fn()
    return done / (time.perf_counter() - start)


def _factorized_reduce_before_issue28(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``_FactorizedReduce.forward`` before December 2026: pads and shifts the input for the second conv, both
    convs with stride 2 (their modules have stride 1 since: they read every second pixel, picked first)."""
    x = self.relu(x)
    shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
    a, b = F.conv2d(x, self.conv_a.weight, stride=2), F.conv2d(shifted, self.conv_b.weight, stride=2)
    return self.bn(torch.cat([a, b], dim=1))


@contextlib.contextmanager
def issue28_kernels() -> Iterator[None]:
    """The NAS cells as they computed before December 2026, for a before/after ratio in one run: dilated
    convolutions on torch's dilated kernels (``DilatedDepthwiseConv2d`` as a plain ``nn.Conv2d``) and the
    factorized reduction padding its input. The same functions; only the kernels and copies differ."""
    from ma2ml.models.nasnet import DilatedDepthwiseConv2d, _FactorizedReduce

    now = DilatedDepthwiseConv2d.forward, _FactorizedReduce.forward
    DilatedDepthwiseConv2d.forward, _FactorizedReduce.forward = nn.Conv2d.forward, _factorized_reduce_before_issue28
    try:
        yield
    finally:
        DilatedDepthwiseConv2d.forward, _FactorizedReduce.forward = now
