"""The fast training path vs a torchvision DataLoader pipeline: same network, same steps.

Both train the CIFAR-10 task's default NASNet network (its budget's skeleton, 10 classes) for
``--steps`` SGD steps of ``--batch-size`` random CIFAR-shaped images (made here, no dataset
needed), with torchvision's AutoAugment CIFAR-10 policy, random crop (padding 4) and flips:

- fast path: ``ma2ml.training.evaluators.fit_recipe``, what every evaluation runs: uint8 data held on
  the device, batched per-sample augmentation on the device, bf16 autocast + channels_last +
  cuDNN autotuning on CUDA;
- reference: the usual pipeline, a ``Dataset`` that turns each uint8 array into a PIL image (as
  ``torchvision.datasets.CIFAR10`` does) with ``RandomCrop, RandomHorizontalFlip, AutoAugment,
  ToTensor, Normalize``, a ``DataLoader`` with ``--workers`` worker processes (pinned memory on
  CUDA), fp32 training.

Training runs on ``--threads`` torch threads on both sides (default 1); the reference also gets its
worker processes. Each path first runs ``--warmup`` steps untimed (CUDA context, cuDNN autotuning),
then the timed run: wall seconds from building the model to the last step, synchronised. The last
line is the headline ratio; the target (>= 3x) is for a GPU.

    python benchmarks/bench_train.py [--steps 100] [--batch-size 256] [--workers 8] [--device auto] [--quick]
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from common import device_sync, pick_device, random_images, rate_line, torchvision_cifar10_policy, verdict
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.spaces import HParams, Recipe
from ma2ml.envs.tasks import Task, get_task
from ma2ml.training.evaluators import default_optimizer, fit_recipe, normalizer

TARGET = 3.0


class PilImages(Dataset):
    """uint8 HWC arrays served as transformed PIL images, as ``torchvision.datasets.CIFAR10`` does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: transforms.Compose) -> None:
        self.images = np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def fast_path(task: Task, budget: Budget, recipe: Recipe, x: torch.Tensor, y: torch.Tensor,
              norm: tuple[torch.Tensor, torch.Tensor], seed: int) -> None:
    """One epoch of ``fit_recipe`` over ``x`` (already on the device)."""
    fit_recipe(recipe, task.build_network, budget, x, y, 10, seed, norm)


def dataloader_path(task: Task, budget: Budget, hp: HParams, images: torch.Tensor, labels: torch.Tensor,
                    norm: tuple[torch.Tensor, torch.Tensor], device: torch.device, workers: int, seed: int) -> None:
    """One epoch of the usual PIL + DataLoader pipeline, fp32, over ``images`` (on the CPU)."""
    mean, std = (t.flatten().tolist() for t in norm)
    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=budget.crop_padding),
        transforms.RandomHorizontalFlip(),
        transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    loader = DataLoader(PilImages(images, labels, transform), batch_size=hp.batch_size, shuffle=True,
                        num_workers=workers, pin_memory=device.type == "cuda", drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    model = task.build_network(task.default_architecture, 3, 10, budget).to(device)
    opt = default_optimizer(model.parameters(), hp)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(loader))
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="timed SGD steps per path")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per path before timing")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="DataLoader worker processes of the reference (default min(8, CPUs))")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="2 steps of 16 images, no warm-up, 1 worker (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batch_size, args.warmup, args.workers = 2, 16, 0, 1
    if min(args.steps, args.batch_size, args.threads) < 1 or min(args.warmup, args.workers) < 0:
        raise SystemExit("--steps, --batch-size and --threads must be >= 1; --warmup and --workers >= 0")
    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    sync = device_sync(device)

    task = get_task("cifar10")
    budget = replace(task.budget, epochs=1)
    hp = HParams(batch_size=args.batch_size)
    recipe = Recipe(architecture=task.default_architecture, hparams=hp, augment=torchvision_cifar10_policy())
    images, labels = random_images(args.steps * args.batch_size, args.seed)
    x, y = images.to(device), labels.to(device)
    norm = normalizer(x)
    warm = max(args.warmup, 1) * args.batch_size

    def timed(run, warm_run) -> float:
        if args.warmup:
            warm_run()
        if sync is not None:
            sync()
        start = time.perf_counter()
        run()
        if sync is not None:
            sync()
        return time.perf_counter() - start

    cpu_norm = tuple(t.cpu() for t in norm)
    ref_s = timed(
        lambda: dataloader_path(task, budget, hp, images, labels, cpu_norm, device, args.workers, args.seed),
        lambda: dataloader_path(task, budget, hp, images[:warm], labels[:warm], cpu_norm, device, args.workers,
                                args.seed))
    fast_s = timed(lambda: fast_path(task, budget, recipe, x, y, norm, args.seed),
                   lambda: fast_path(task, budget, recipe, x[:warm], y[:warm], norm, args.seed))

    n = args.steps * args.batch_size
    print(f"NASNet (cifar10 default cells, C={budget.channels}, {budget.stages} stages), {args.steps} steps of "
          f"{args.batch_size} images, {device.type}, {args.threads} torch thread(s), wall seconds:")
    print(rate_line(f"torchvision DataLoader pipeline ({args.workers} workers, fp32)", n, ref_s))
    print(rate_line("ma2ml fast path (fit_recipe)", n, fast_s))
    ratio = ref_s / fast_s
    note = verdict(ratio, TARGET, device.type == "cuda" and not args.quick)
    print(f"headline: fast path {n / fast_s:,.0f} images/s vs DataLoader pipeline {n / ref_s:,.0f} images/s "
          f"= {ratio:.2f}x on {device.type}{note}")


if __name__ == "__main__":
    main()
