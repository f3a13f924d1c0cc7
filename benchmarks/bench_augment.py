"""Batched per-sample AutoAugment vs torchvision's per-image AutoAugment, same images, same policy.

Both sides apply torchvision's AutoAugment CIFAR-10 policy to the same random 32x32x3 uint8
images. References (torchvision, one image at a time, as a DataLoader worker does it):
``transforms.AutoAugment`` (v1) on PIL images (the classic CIFAR recipe), ``transforms.v2.AutoAugment``
on PIL images and on uint8 tensors. Batched: ``ma2ml.models.augment.apply_policy`` on batches of
``--batch-size`` (each sample draws its own sub-policy), on ``--device``.

Both sides get the same compute: ``--threads`` torch threads (default 1; PIL is single-threaded),
so on the CPU the ratio is per core. CPU runs are timed in process CPU seconds
(``time.process_time``: time spent waiting for other processes on a shared machine does not
count, though their share of caches and cores still slows both sides); CUDA runs in wall seconds
with ``torch.cuda.synchronize``. Each figure is the best of ``--repeats`` rounds (a round runs
every path once, in turn). The headline (last line) is the ratio to the *fastest* torchvision
path; target >= 5x on CPU (not judged in ``--quick`` mode, whose one small batch is not
representative).

    python benchmarks/bench_augment.py [--images 4096] [--batch-size 512] [--device cpu] [--quick]
"""
from __future__ import annotations

import argparse
import time

import torch
from common import best_seconds, device_sync, pick_device, random_images, rate_line, torchvision_cifar10_policy, verdict
from PIL import Image
from torchvision import transforms
from torchvision.transforms import v2

from ma2ml.models.augment import apply_policy

TARGET = 5.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096, help="images per measurement")
    parser.add_argument("--batch-size", type=int, default=512, help="batch size of the batched path")
    parser.add_argument("--device", default="cpu", help="where the batched path runs: cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the best counts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="256 images, 1 repeat (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats = 256, 1
    if min(args.images, args.batch_size, args.threads, args.repeats) < 1:
        raise SystemExit("--images, --batch-size, --threads and --repeats must be >= 1")
    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # torchvision's transforms draw from the global generator
    clock = time.process_time if device.type == "cpu" else time.perf_counter

    images, _ = random_images(args.images, args.seed)
    pil = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
    v1_aa = transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10)
    v2_aa = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    references = {
        "torchvision AutoAugment (v1), PIL, per image": lambda: [v1_aa(p) for p in pil],
        "torchvision v2.AutoAugment, PIL, per image": lambda: [v2_aa(p) for p in pil],
        "torchvision v2.AutoAugment, uint8 tensor, per image": lambda: [v2_aa(x) for x in images],
    }
    policy = torchvision_cifar10_policy().as_tensor()
    on_device = images.to(device)
    gen = torch.Generator().manual_seed(args.seed)

    def batched() -> None:
        for i in range(0, len(on_device), args.batch_size):
            apply_policy(on_device[i:i + args.batch_size], policy, gen)

    batched()  # first-call costs (CUDA context, kernels)
    sync = device_sync(device)
    name = f"ma2ml apply_policy, batches of {min(args.batch_size, args.images)}, {device.type}"
    seconds = best_seconds({name: batched, **references}, args.repeats, clock, sync)

    unit = "CPU seconds" if clock is time.process_time else "wall seconds"
    print(f"AutoAugment CIFAR-10 policy on {args.images} random 32x32x3 images, {args.threads} torch thread(s), "
          f"best of {args.repeats}, {unit}:")
    for label, secs in seconds.items():
        print(rate_line(label, args.images, secs))
    fastest = min(references, key=seconds.__getitem__)
    ratio = seconds[fastest] / seconds[name]
    note = verdict(ratio, TARGET, device.type == "cpu" and not args.quick)
    print(f"headline: batched {device.type} {args.images / seconds[name]:,.0f} images/s vs "
          f"{args.images / seconds[fastest]:,.0f} images/s ({fastest}) = {ratio:.2f}x{note}")


if __name__ == "__main__":
    main()
