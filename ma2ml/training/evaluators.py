"""Evaluators: turn a joint action (tokens per agent) into an evaluation record.

The environment never trains inline; it calls an :class:`Evaluator`. :class:`TrainEvaluator`
really trains the network (CUDA when present, CPU otherwise; :func:`resolve_device` checks a
``device`` argument when the evaluator is built); the benchmark table's
evaluator answers from stored results. Faults never escape: divergence, out-of-memory,
the time limit and any other error end in a record with a ``status`` and reward 0.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator, resolve_device
from ma2ml.envs.core.records import EvalRecord
from ma2ml.models.augment import apply_policy, random_crop_flip
from ma2ml.models.flops import count_macs
from ma2ml.envs.spaces import HParams, ModuleSpace, Recipe
from ma2ml.envs.tasks import Task, load_splits
from ma2ml.envs.tasks.data import Split, Splits

if TYPE_CHECKING:
    pass


@lru_cache(maxsize=4096)
def network_cost(build: Callable[..., torch.nn.Module], architecture: Any, in_channels: int, size: int,
                 num_classes: int, budget: Budget) -> tuple[int, int]:
    """(multiply-adds, params) of ``build``'s network for an architecture, counted on the meta device."""
    return count_macs(lambda: build(architecture, in_channels, num_classes, budget), (1, in_channels, size, size))


class TrainEvaluator(Evaluator):
    """Trains the pipeline for the task's proxy budget and scores it on the validation split.

    Data is held on the device as uint8; the AUG policy and random crops are applied to
    whole batches on the device. It trains in channels_last; on CUDA also with bf16 autocast and
    cuDNN autotuning. On CPU it trains with ``cpu_threads`` torch threads (default 1: proxy
    networks are small, extra threads buy little and, on a busy machine, spin-wait for
    minutes) and is deterministic for a given seed; the thread count is part of
    :meth:`settings`, since it changes the floats. ``cpu_threads=None`` keeps torch's setting.
    ``device`` is checked when the evaluator is built (:func:`resolve_device`): ``"cuda"``
    without a visible GPU is a ``ValueError`` there, not a failed evaluation later.
    """

    def __init__(
        self,
        task: Task,
        spaces: Mapping[str, ModuleSpace],
        data_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        epochs: int | None = None,
        time_limit: float | None = None,
        cpu_threads: int | None = 1,
    ) -> None:
        super().__init__(task, spaces)
        if cpu_threads is not None and cpu_threads < 1:
            raise UserError(f"cpu_threads must be >= 1 (or None for torch's setting), got {cpu_threads}")
        if epochs is not None and epochs < 1:
            raise UserError(f"epochs must be >= 1, got {epochs}")
        if time_limit is not None and not (isinstance(time_limit, (int, float)) and not isinstance(time_limit, bool)
                                           and math.isfinite(time_limit) and time_limit > 0):
            raise UserError(f"time_limit must be a finite number of seconds > 0 (or None), got {time_limit!r}")
        self.data_dir = data_dir
        self.device = resolve_device(device)
        self.budget = task.budget if epochs is None else replace(task.budget, epochs=epochs)
        self.time_limit = time_limit
        self.cpu_threads = cpu_threads
        self._splits: Splits | None = None
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def settings(self) -> dict[str, Any]:
        threads = self.cpu_threads if self.cpu_threads is not None else torch.get_num_threads()
        return {**super().settings(), "budget": asdict(self.budget), "device": self.device.type,
                **({"cpu_threads": threads} if self.device.type == "cpu" else {})}

    def use_device(self, device: torch.device) -> None:
        self.device = device
        self._on_device = {}

    def __getstate__(self) -> dict[str, Any]:
        """Loaded data stays behind: a worker's copy loads its own splits once."""
        return {**super().__getstate__(), "_splits": None, "_on_device": {}}

    @property
    def splits(self) -> Splits:
        if self._splits is None:
            self._splits = load_splits(self.task, self.data_dir)
        return self._splits

    def data_facts(self) -> tuple[tuple[int, int, int], int, int]:
        return self.splits.image_shape, len(self.splits.train), self.splits.num_classes

    def _device_split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self._on_device:
            split: Split = getattr(self.splits, name)
            self._on_device[name] = (split.x.to(self.device), split.y.to(self.device))
        return self._on_device[name]

    def recipe(self, configs: Mapping[str, Any]) -> Recipe:
        recipe = Recipe(architecture=self.task.default_architecture, hparams=self.task.default_hparams)
        for agent, config in configs.items():
            self.spaces[agent].apply(config, recipe)
        return recipe

    def _evaluate(self, configs: Mapping[str, Any], seed: int) -> EvalRecord:
        from ma2ml.envs.core.threads import torch_threads

        with torch_threads(self.cpu_threads if self.device.type == "cpu" else None):
            return train_recipe(self.recipe(configs), self, seed)


NORM_MAX_VALUES = 2**28
"""Above this many pixel values, :func:`normalizer` uses an evenly strided subset of the images
(bounds its float copy to 1 GB; digits and CIFAR are below it and use every image)."""


def normalizer(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) of uint8 images (N, C, H, W) scaled to [0, 1], shaped (1, C, 1, 1)."""
    xf = x[::max(1, math.ceil(x.numel() / NORM_MAX_VALUES))].float() / 255.0
    mean = xf.mean(dim=(0, 2, 3), keepdim=True)
    std = xf.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    return mean, std


def to_input(x: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor], size: int | None = None) -> torch.Tensor:
    """uint8 images -> standardised float; resized (bilinear, antialiased) to ``size`` x ``size``
    when a size is given and differs (a NAS space that searches the resolution sets it)."""
    xf = (x.float() / 255.0 - norm[0]) / norm[1]
    if size is not None and tuple(xf.shape[-2:]) != (size, size):
        xf = F.interpolate(xf, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return xf


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor],
             batch_size: int, amp: bool, size: int | None = None) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for i in range(0, len(y), batch_size):
        xb = to_input(x[i:i + batch_size], norm, size)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(xb)
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
    return float(correct.item()) / max(len(y), 1)


def default_optimizer(params: Any, hp: HParams) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum and weight decay, the NAS proxy-training default."""
    return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0,
                           weight_decay=hp.weight_decay)


EpochEnd = Callable[[torch.nn.Module, float], bool]
"""Called after every epoch with the model and the epoch's mean training loss; True stops training."""


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite (NaN or infinite)."""


def fit_recipe(recipe: Recipe, build: Callable[..., torch.nn.Module], budget: Budget, x: torch.Tensor,
               y: torch.Tensor, num_classes: int, seed: int, norm: tuple[torch.Tensor, torch.Tensor],
               epoch_end: EpochEnd | None = None) -> torch.nn.Module:
    """Train a fresh ``build`` network of ``recipe`` on uint8 images ``x`` (N, C, H, W) and labels ``y``.

    ``x`` and ``y`` live on the training device; ``norm`` is the (mean, std) the images are
    standardised with. Runs ``budget.epochs`` epochs of ``len(y) // batch_size`` steps with the
    recipe's augmentation, the budget's crop and flip, and a cosine schedule, in channels_last; on
    CUDA with bf16 autocast. Raises :class:`TrainingDiverged` on a non-finite epoch loss.
    Global RNG state is left as it was; all randomness comes from ``seed``.
    """
    device, hp = x.device, recipe.hparams
    cuda = device.type == "cuda"
    gen = torch.Generator().manual_seed(seed)
    policy = recipe.augment.as_tensor() if recipe.augment is not None else None
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.manual_seed(seed)
        model = build(recipe.architecture, x.shape[1], num_classes, budget, drop_path=hp.drop_path).to(device)
        if cuda:
            torch.backends.cudnn.benchmark = True
        # channels_last on CPU too: oneDNN's depthwise kernels are faster in it (benchmarks/bench_depthwise.py),
        # about 10% of a digits evaluation, and the trained weights came out bit-identical on our CPU
        model = model.to(memory_format=torch.channels_last)
        opt = (recipe.make_optimizer or default_optimizer)(model.parameters(), hp)
        steps = max(len(y) // hp.batch_size, 1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=budget.epochs * steps)
        for epoch in range(budget.epochs):
            model.train()
            perm = torch.randperm(len(y), generator=gen).to(device)
            loss_sum = torch.zeros((), device=device)
            for s in range(steps):
                idx = perm[s * hp.batch_size:(s + 1) * hp.batch_size]
                xb, yb = x[idx], y[idx]
                if policy is not None:
                    xb = apply_policy(xb, policy, gen)
                if budget.crop_padding or budget.flip:
                    xb = random_crop_flip(xb, budget.crop_padding, gen, flip=budget.flip)
                xb = to_input(xb, norm, recipe.input_size).contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=hp.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach()
            total = float(loss_sum)
            if not math.isfinite(total):
                raise TrainingDiverged(f"non-finite training loss in epoch {epoch + 1}")
            if epoch_end is not None and epoch_end(model, total / steps):
                break
    return model


def train_recipe(recipe: Recipe, ev: TrainEvaluator, seed: int, test_curve: list[float] | None = None) -> EvalRecord:
    """Train ``recipe`` for ``ev``'s budget (for ``recipe.epochs`` epochs when set); returns the record
    (status ``ok``/``diverged``/``timeout``).

    ``test_curve``: when a list is given, the test accuracy after each epoch is appended to it
    (reported only, for tables that store it; scoring does not change the training).
    """
    budget, device = ev.budget, ev.device
    if recipe.epochs is not None:
        budget = replace(budget, epochs=recipe.epochs)
    xtr, ytr = ev._device_split("train")
    c, h, _ = ev.splits.image_shape
    size = recipe.input_size or h
    flops, params = network_cost(ev.task.build_network, recipe.architecture, c, size, ev.splits.num_classes, budget)
    cuda = device.type == "cuda"
    norm = normalizer(xtr)
    start = time.perf_counter()
    curve: list[float] = []
    status, error = "ok", None

    def epoch_end(model: torch.nn.Module, _loss: float) -> bool:
        nonlocal status, error
        curve.append(accuracy(model, *ev._device_split("val"), norm, budget.eval_batch_size, cuda, size))
        if test_curve is not None:
            test_curve.append(accuracy(model, *ev._device_split("test"), norm, budget.eval_batch_size, cuda, size))
        if ev.time_limit is not None and time.perf_counter() - start > ev.time_limit:
            status, error = "timeout", f"time limit of {ev.time_limit:g} s reached after {len(curve)} epochs"
            return True
        return False

    try:
        model = fit_recipe(recipe, ev.task.build_network, budget, xtr, ytr, ev.splits.num_classes, seed, norm,
                           epoch_end)
    except TrainingDiverged as exc:
        status, error = "diverged", str(exc)
    test_acc = (accuracy(model, *ev._device_split("test"), norm, budget.eval_batch_size, cuda, size)
                if status == "ok" else 0.0)
    return EvalRecord(
        status=status,
        val_acc=curve[-1] if status == "ok" else 0.0,
        test_acc=test_acc,
        flops=flops,
        params=params,
        curve=curve,
        train_seconds=time.perf_counter() - start,
        error=error,
    )
