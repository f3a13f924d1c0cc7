"""Environments of ma2ml; importing this module registers them with PettingZoo and Gymnasium.

    import ma2ml.envs, pettingzoo, gymnasium
    penv = pettingzoo.make("parallel", "ma2ml/AutoML-Digits-v0")
    genv = gymnasium.make("ma2ml/JointAutoML-Digits-v0")

The public names (``__all__``) are importable from here; all but the registration functions
load on first use, so ``import ma2ml.envs`` stays light:

    from ma2ml.envs import automl_v0, TokenSpace, Task, register_task, register_envs
"""
from __future__ import annotations

import importlib
from typing import Any

import gymnasium
import pettingzoo

_LAZY = {
    "automl_v0": "ma2ml.envs.automl_v0", "AutoMLParallelEnv": "ma2ml.envs.automl_v0",
    "JointAutoMLEnv": "ma2ml.envs.joint", "VectorAutoML": "ma2ml.envs.vector",
    "ModuleSpace": "ma2ml.envs.spaces", "TokenSpace": "ma2ml.envs.spaces", "TokenField": "ma2ml.envs.spaces",
    "AugSpace": "ma2ml.envs.spaces", "NasSpace": "ma2ml.envs.spaces", "HpoSpace": "ma2ml.envs.spaces",
    "HParams": "ma2ml.envs.spaces", "Recipe": "ma2ml.envs.spaces",
    "Task": "ma2ml.envs.tasks", "Budget": "ma2ml.envs.tasks", "register_task": "ma2ml.envs.tasks",
    "get_task": "ma2ml.envs.tasks", "task_names": "ma2ml.envs.tasks",
    "EvalRecord": "ma2ml.envs.core.records", "Evaluator": "ma2ml.envs.core.evaluator",
    "TrainEvaluator": "ma2ml.envs.training.evaluators", "STATUSES": "ma2ml.envs.core.records",
    "FlopsReward": "ma2ml.envs.core.reward",
    "EvalStore": "ma2ml.envs.runtime.store", "RunLog": "ma2ml.envs.runtime.runlog", "StoreError": "ma2ml.envs.runtime.store",
    "make_executor": "ma2ml.envs.runtime.executors", "InProcessExecutor": "ma2ml.envs.runtime.executors",
    "ProcessPoolExecutor": "ma2ml.envs.runtime.pool", "RayExecutor": "ma2ml.envs.runtime.ray",
    "TableEvaluator": "ma2ml.envs.benchmark.table", "load_table": "ma2ml.envs.benchmark.table",
    "load_checkpoint": "ma2ml.envs.final", "train_final": "ma2ml.envs.final",
}

ENV_TASKS: dict[str, dict] = {
    "Digits": {"task": "digits"},
    "CIFAR10": {"task": "cifar10"},
    "CIFAR100": {"task": "cifar100"},
}
"""Registered env families: ``ma2ml/AutoML-<name>-v0`` and ``ma2ml/JointAutoML-<name>-v0``."""


def register_envs(name: str, kwargs: dict, module: str = "ma2ml.envs.automl_v0",
                  joint: str = "ma2ml.envs.joint:JointAutoMLEnv") -> None:
    """Register ``ma2ml/AutoML-<name>-v0`` (parallel and AEC) and ``ma2ml/JointAutoML-<name>-v0``.

    ``module`` provides ``parallel_env`` and ``env``; ``joint`` is the Gymnasium entry point.
    """
    pid, gid = f"ma2ml/AutoML-{name}-v0", f"ma2ml/JointAutoML-{name}-v0"
    if pid in pettingzoo.parallel_registry:
        return
    pettingzoo.register("parallel", pid, f"{module}:parallel_env", kwargs=dict(kwargs))
    pettingzoo.register("aec", pid, f"{module}:env", kwargs=dict(kwargs))
    gymnasium.register(gid, entry_point=joint, kwargs=dict(kwargs))


def make_parallel(env_id: str, **kwargs: object) -> pettingzoo.ParallelEnv:
    """``pettingzoo.make("parallel", env_id, **kwargs)`` for ma2ml's ids, with one clear
    ``ValueError`` for an unknown id or arguments the env does not take."""
    if env_id not in env_ids():
        raise ValueError(f"unknown env {env_id!r}; registered envs are {env_ids()}")
    try:
        return pettingzoo.make("parallel", env_id, **kwargs)
    except TypeError as exc:
        raise ValueError(f"{env_id} does not take these arguments ({exc})") from None


def env_ids() -> list[str]:
    """The registered PettingZoo ids of ma2ml."""
    return sorted(k for k in pettingzoo.parallel_registry if k.startswith("ma2ml/"))


__all__ = ["ENV_TASKS", "env_ids", "make_parallel", "register_envs", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if module.__name__.rsplit(".", 1)[-1] == name else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


for _name, _kwargs in ENV_TASKS.items():
    register_envs(_name, _kwargs)
register_envs("DigitsBench", {}, module="ma2ml.envs.digitsbench_v0", joint="ma2ml.envs.digitsbench_v0:joint_env")
register_envs("ImageNet", {"flops_constraint": 600e6}, module="ma2ml.envs.imagenet_v0",
              joint="ma2ml.envs.imagenet_v0:joint_env")
