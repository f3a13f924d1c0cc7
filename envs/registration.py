"""The one place where ma2ml's env ids are registered with PettingZoo and Gymnasium.

Every family is ``ma2ml/AutoML-<name>-v0`` (parallel and AEC) plus ``ma2ml/JointAutoML-<name>-v0``
(the Gymnasium joint view) and ``ma2ml/TokenAutoML-<name>-v0`` (the token-level MARL view,
:mod:`ma2ml.envs.token_v0`, parallel and AEC); entry points are strings, so nothing heavy
loads until an env is made. Tasks register in one place too, the task registry (:mod:`ma2ml.envs.tasks.registry`:
built-in tasks and ``LAZY_TASKS``). ``import ma2ml.envs`` runs this module.

=================  ===============================  ==================================
family             module                           task
=================  ===============================  ==================================
Digits             ``ma2ml.envs.automl_v0``         ``digits``
CIFAR10/CIFAR100   ``ma2ml.envs.automl_v0``         ``cifar10`` / ``cifar100``
DigitsBench        ``ma2ml.envs.digitsbench_v0``    ``digits-bench`` (the table)
DigitsHard         ``ma2ml.envs.digitshard_v0``     ``digits-hard-combined`` (the hard table)
MnistBench         ``ma2ml.envs.suitetables_v0``    ``mnist-sample-hard-mnist`` (a suite table)
ShapesBench        ``ma2ml.envs.suitetables_v0``    ``shapes-hard-shapes`` (a suite table)
ImageNet           ``ma2ml.envs.imagenet_v0``       ``imagefolder`` (C = 600M)
=================  ===============================  ==================================
"""
from __future__ import annotations

import gymnasium
import pettingzoo

from ma2ml.envs.core.errors import UserError

ENV_TASKS: dict[str, dict] = {
    "Digits": {"task": "digits"},
    "CIFAR10": {"task": "cifar10"},
    "CIFAR100": {"task": "cifar100"},
}
"""Registered env families: ``ma2ml/AutoML-<name>-v0`` and ``ma2ml/JointAutoML-<name>-v0``."""
TOKEN_PREFIX = "ma2ml/TokenAutoML-"
"""Prefix of the token-level views' ids (``ma2ml/TokenAutoML-<name>-v0``)."""


def register_envs(name: str, kwargs: dict, module: str = "ma2ml.envs.automl_v0",
                  joint: str = "ma2ml.envs.joint:JointAutoMLEnv") -> None:
    """Register ``ma2ml/AutoML-<name>-v0`` (parallel and AEC), ``ma2ml/JointAutoML-<name>-v0`` and
    ``ma2ml/TokenAutoML-<name>-v0`` (the token view of the first, parallel and AEC).

    ``module`` provides ``parallel_env`` and ``env``; ``joint`` is the Gymnasium entry point.
    """
    pid, gid, tid = f"ma2ml/AutoML-{name}-v0", f"ma2ml/JointAutoML-{name}-v0", f"{TOKEN_PREFIX}{name}-v0"
    if pid in pettingzoo.parallel_registry:
        return
    pettingzoo.register("parallel", pid, f"{module}:parallel_env", kwargs=dict(kwargs))
    pettingzoo.register("aec", pid, f"{module}:env", kwargs=dict(kwargs))
    gymnasium.register(gid, entry_point=joint, kwargs=dict(kwargs))
    pettingzoo.register("parallel", tid, "ma2ml.envs.token_v0:parallel_env", kwargs={"env": pid})
    pettingzoo.register("aec", tid, "ma2ml.envs.token_v0:env", kwargs={"env": pid})


def make_parallel(env_id: str, **kwargs: object) -> pettingzoo.ParallelEnv:
    """``pettingzoo.make("parallel", env_id, **kwargs)`` for ma2ml's ids, with one clear
    ``ValueError`` for an unknown id or arguments the env does not take."""
    if env_id not in env_ids():
        raise UserError(f"unknown env {env_id!r}; registered envs are {env_ids()}")
    try:
        return pettingzoo.make("parallel", env_id, **kwargs)
    except TypeError as exc:
        raise UserError(f"{env_id} does not take these arguments ({exc})") from None


def env_ids() -> list[str]:
    """The registered PettingZoo ids of ma2ml's pipeline envs (what learners and ``ma2ml search`` take;
    the token views are :func:`token_env_ids`)."""
    return sorted(k for k in pettingzoo.parallel_registry if k.startswith("ma2ml/") and not k.startswith(TOKEN_PREFIX))


def token_env_ids() -> list[str]:
    """The registered PettingZoo ids of the token-level views (``pettingzoo.make("parallel", id)``)."""
    return sorted(k for k in pettingzoo.parallel_registry if k.startswith(TOKEN_PREFIX))


for _name, _kwargs in ENV_TASKS.items():
    register_envs(_name, _kwargs)
register_envs("DigitsBench", {}, module="ma2ml.envs.digitsbench_v0", joint="ma2ml.envs.digitsbench_v0:joint_env")
register_envs("DigitsHard", {}, module="ma2ml.envs.digitshard_v0", joint="ma2ml.envs.digitshard_v0:joint_env")
for _name, _table in (("MnistBench", "mnist"), ("ShapesBench", "shapes")):
    register_envs(_name, {"suite_table": _table}, module="ma2ml.envs.suitetables_v0",
                  joint="ma2ml.envs.suitetables_v0:joint_env")
register_envs("ImageNet", {"flops_constraint": 600e6}, module="ma2ml.envs.imagenet_v0",
              joint="ma2ml.envs.imagenet_v0:joint_env")
