"""Tasks: a dataset with its splits, a proxy-training budget, a FLOPs constraint and the search
spaces of its modules (:mod:`ma2ml.envs.tasks.registry`); the loaders (:mod:`ma2ml.envs.tasks.data`,
:mod:`ma2ml.envs.tasks.imagefolder`). Register your own task with :func:`register_task`.
"""
from __future__ import annotations

from ma2ml.envs.core.budget import Budget
from ma2ml.envs.tasks.registry import (DEFAULT_GENOTYPE, DESCRIPTOR_FIELDS, LAZY_TASKS, Task, build_nasnet, descriptor,
                                       get_task, load_splits, register_task, task_names)

__all__ = ["Budget", "build_nasnet", "DEFAULT_GENOTYPE", "descriptor", "DESCRIPTOR_FIELDS", "get_task", "LAZY_TASKS", "load_splits", "register_task", "Task", "task_names"]
