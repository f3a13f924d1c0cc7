"""The game: ma2ml's environments, their spaces, tasks and reward; importing this module registers the
envs with PettingZoo and Gymnasium.

    import ma2ml.envs, pettingzoo, gymnasium
    penv = pettingzoo.make("parallel", "ma2ml/AutoML-Digits-v0")
    genv = gymnasium.make("ma2ml/JointAutoML-Digits-v0")

The public names (``__all__``) are importable from here; all but the registration functions
load on first use, so ``import ma2ml.envs`` stays light:

    from ma2ml.envs import automl_v0, TokenSpace, Task, register_task, register_envs

The machinery lives beside the game, not in it: training (:mod:`ma2ml.training`), networks
(:mod:`ma2ml.models`), the store and executors (:mod:`ma2ml.runtime`) and the benchmark tables
(:mod:`ma2ml.bench`).
"""
from __future__ import annotations

import importlib
from typing import Any

from ma2ml.envs.registration import ENV_TASKS, env_ids, make_parallel, register_envs, token_env_ids

_LAZY = {
    "automl_v0": "ma2ml.envs.automl_v0", "AutoMLParallelEnv": "ma2ml.envs.automl_v0",
    "JointAutoMLEnv": "ma2ml.envs.joint", "VectorAutoML": "ma2ml.envs.vector",
    "ModuleSpace": "ma2ml.envs.spaces", "TokenSpace": "ma2ml.envs.spaces", "TokenField": "ma2ml.envs.spaces",
    "AugSpace": "ma2ml.envs.spaces", "NasSpace": "ma2ml.envs.spaces", "HpoSpace": "ma2ml.envs.spaces",
    "HParams": "ma2ml.envs.spaces", "Recipe": "ma2ml.envs.spaces",
    "Task": "ma2ml.envs.tasks", "Budget": "ma2ml.envs.tasks", "register_task": "ma2ml.envs.tasks",
    "get_task": "ma2ml.envs.tasks", "task_names": "ma2ml.envs.tasks",
    "EvalRecord": "ma2ml.envs.core.records", "Evaluator": "ma2ml.envs.core.evaluator",
    "STATUSES": "ma2ml.envs.core.records",
    "FlopsReward": "ma2ml.envs.core.reward",
    "token_v0": "ma2ml.envs.token_v0", "token_env": "ma2ml.envs.token_v0", "TokenAutoMLEnv": "ma2ml.envs.token_v0",
    "TokenLayout": "ma2ml.envs.token_v0",
}

__all__ = ["ENV_TASKS", "env_ids", "make_parallel", "register_envs", "token_env_ids", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if module.__name__.rsplit(".", 1)[-1] == name else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
