"""Tasks: a dataset with its splits, a proxy-training budget, a FLOPs constraint and the
search spaces of its modules. Register your own with :func:`register_task`.
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.core.errors import UserError
from ma2ml.models.nasnet import Block, Genotype, NASNetwork
from ma2ml.envs.spaces import AugSpace, HParams, HpoSpace, ModuleSpace, NasSpace
from ma2ml.envs.tasks.data import Splits, load_cifar, load_digits


def build_nasnet(architecture: Genotype, in_channels: int, num_classes: int, budget: Budget,
                 drop_path: float = 0.0) -> NASNetwork:
    """The NASNet-style skeleton of the budget, with the searched cells."""
    return NASNetwork(architecture, in_channels, num_classes, budget.channels, budget.cells_per_stage,
                      budget.stages, drop_path=drop_path)


@dataclass(frozen=True)
class Task:
    """A dataset, its budget, constraint and module spaces (see the module docstring)."""

    name: str
    description: str
    load: Callable[[str | Path | None], Splits]
    """Loads the splits; receives ``data_dir`` (``None`` for embedded datasets)."""
    spaces: Mapping[str, Callable[[], ModuleSpace]]
    """Factories of the default module spaces, by agent name."""
    default_architecture: Any
    """Architecture used when NAS is not an agent."""
    budget: Budget = field(default_factory=Budget)
    default_hparams: HParams = field(default_factory=HParams)
    """Hyper-parameters used when HPO is not an agent."""
    flops_constraint: float = 1e6
    """Constraint C of the reward, in multiply-adds."""
    needs_data_dir: bool = False
    build_network: Callable[..., Any] = build_nasnet
    """``(architecture, in_channels, num_classes, budget, drop_path) -> nn.Module``."""

    def make_spaces(self) -> dict[str, ModuleSpace]:
        return {name: factory() for name, factory in self.spaces.items()}


_TASKS: dict[str, Task] = {}

LAZY_TASKS: dict[str, str] = {"imagefolder": "ma2ml.envs.tasks.imagefolder:imagefolder_task",
                              "digits-bench": "ma2ml.bench.space:bench_task_definition",
                              "digits-hard-combined": "ma2ml.bench.hard.tables:hard_task_definition",
                              "mnist-sample-hard-mnist": "ma2ml.bench.hard.tables:mnist_task_definition",
                              "shapes-hard-shapes": "ma2ml.bench.hard.tables:shapes_task_definition",
                              "mnist-sample": "ma2ml.envs.tasks.offline:mnist_sample_task",
                              "shapes": "ma2ml.envs.tasks.offline:shapes_task"}
"""Tasks made on first use, as ``"module:function"`` returning the :class:`Task` (keeps ``import
ma2ml.envs`` light): with the built-in tasks below, the one place where tasks are registered."""


def register_task(task: Task, *, overwrite: bool = False) -> Task:
    """Add a task to the registry (``overwrite=True`` to replace one)."""
    if task.name in _TASKS and not overwrite:
        raise UserError(f"task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def get_task(name: str | Task) -> Task:
    if isinstance(name, Task):
        return name
    if name not in _TASKS and name in LAZY_TASKS:
        module, _, function = LAZY_TASKS[name].partition(":")
        task = getattr(importlib.import_module(module), function)()
        if name not in _TASKS:
            register_task(task)
    if name not in _TASKS:
        raise UserError(f"unknown task {name!r}; registered tasks are {sorted(_TASKS)}")
    return _TASKS[name]


def task_names() -> list[str]:
    return sorted(set(_TASKS) | set(LAZY_TASKS))


@lru_cache(maxsize=4)
def _cached_load(task_name: str, data_dir: str | None) -> Splits:
    return get_task(task_name).load(data_dir)


def load_splits(task: Task, data_dir: str | Path | None = None) -> Splits:
    """The task's splits, loaded once per process (registered tasks) and kept in memory."""
    key = None if data_dir is None else str(Path(data_dir).expanduser().resolve())
    if _TASKS.get(task.name) is task:
        return _cached_load(task.name, key)
    return task.load(key)


def descriptor(splits_shape: tuple[int, int, int], train_size: int, num_classes: int,
               constraint: float, exponent: float) -> np.ndarray:
    """The task descriptor S, the same observation for every agent (all entries O(1))."""
    c, h, _ = splits_shape
    return np.array(
        [math.log10(max(train_size, 1)), math.log10(num_classes), math.log2(h) / 8.0, c / 3.0,
         math.log10(constraint) / 10.0, exponent],
        dtype=np.float32,
    )


DESCRIPTOR_FIELDS = ("log10_train_size", "log10_classes", "log2_image_size/8", "channels/3",
                     "log10_flops_constraint/10", "reward_exponent")

# A NASNet-A-like default cell, used when NAS is not an agent.
_DEFAULT_CELL = (
    Block((0, 1), (0, 6)),
    Block((0, 1), (1, 0)),
    Block((1, 0), (5, 6)),
)
DEFAULT_GENOTYPE = Genotype(normal=_DEFAULT_CELL, reduce=_DEFAULT_CELL)

register_task(Task(
    name="digits",
    description="scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), 60/20/20 split",
    load=lambda data_dir: load_digits(),
    spaces={
        "aug": lambda: AugSpace(num_sub_policies=5),
        "nas": lambda: NasSpace(num_blocks=3),
        "hpo": HpoSpace,
    },
    default_architecture=DEFAULT_GENOTYPE,
    # 4 epochs since December 2026 (8 before): half the CPU time; it ranks 200 random pipelines like the 8-epoch
    # proxy at Spearman 0.90, at the bar within float-level noise (benchmarks/proxy_fidelity.py,
    # docs/performance.md)
    budget=Budget(epochs=4, channels=16, cells_per_stage=1, stages=2, crop_padding=1, flip=False,
                  eval_batch_size=1024),
    flops_constraint=0.6e6,
))

for _name, _classes in (("cifar10", 10), ("cifar100", 100)):
    register_task(Task(
        name=_name,
        description=f"CIFAR-{_classes} from a local folder in torchvision's format (--data-dir)",
        load=lambda data_dir, _n=_name: load_cifar(_n, data_dir),
        spaces={
            "aug": lambda: AugSpace(num_sub_policies=5),
            "nas": lambda: NasSpace(num_blocks=5),
            "hpo": HpoSpace,
        },
        default_architecture=DEFAULT_GENOTYPE,
        budget=Budget(epochs=10, channels=16, cells_per_stage=1, stages=3, crop_padding=4, flip=True),
        flops_constraint=60e6,
        needs_data_dir=True,
    ))
