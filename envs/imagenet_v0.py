"""``ma2ml/AutoML-ImageNet-v0`` and ``ma2ml/JointAutoML-ImageNet-v0``: the AutoML env on an
ImageFolder tree (:mod:`ma2ml.envs.tasks.imagefolder`) with the FBNet space and C = 600M
multiply-adds. Arguments: those of :mod:`ma2ml.envs.automl_v0` plus the
:class:`~ma2ml.envs.tasks.imagefolder.ImageFolderConfig` options.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ma2ml.envs import automl_v0
from ma2ml.envs.automl_v0 import AutoMLParallelEnv
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.joint import JointAutoMLEnv
from ma2ml.envs.tasks.imagefolder import ImageFolderConfig, imagefolder_task

ENV_OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(ImageFolderConfig)
                                     if f.name not in ("epochs", "flops_constraint"))
"""The :class:`ImageFolderConfig` fields the ImageNet envs take as keyword arguments (``epochs``
and ``flops_constraint`` are the env's own arguments, which override the task's)."""


def env_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The ImageNet envs' arguments -> automl_v0's: the :data:`ENV_OPTIONS` become ``task``."""
    options = {k: v for k, v in kwargs.items() if k in ENV_OPTIONS}
    rest = {k: v for k, v in kwargs.items() if k not in ENV_OPTIONS}
    if "task" in rest:
        if options:
            raise UserError(f"pass task= or the imagefolder options {sorted(options)}, not both")
        return rest
    return {**rest, "task": imagefolder_task(ImageFolderConfig(**options))}


def parallel_env(**kwargs: Any) -> AutoMLParallelEnv:
    """``ma2ml/AutoML-ImageNet-v0``: automl_v0's env on the imagefolder task.

    Takes automl_v0's arguments (``data_dir``, ``epochs``, ``flops_constraint``, ...) plus the
    :data:`ENV_OPTIONS`, e.g. ``classes=200, max_per_class=300`` for an ImageNet-200 proxy.
    """
    return automl_v0.parallel_env(**env_kwargs(kwargs))


def env(**kwargs: Any):
    """The AEC form of :func:`parallel_env` (PettingZoo's order-enforcing wrapper)."""
    return automl_v0.env(**env_kwargs(kwargs))


def joint_env(**kwargs: Any) -> JointAutoMLEnv:
    """``ma2ml/JointAutoML-ImageNet-v0``: the single-agent joint view, same arguments as :func:`parallel_env`."""
    return JointAutoMLEnv(**env_kwargs(kwargs))
