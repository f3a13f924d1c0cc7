"""ma2ml: multi-agent AutoML (MA2ML, CVPR 2023) as a PettingZoo environment, with learners and benchmarks.

The few things a user needs, in one place (each loads what it needs on first use)::

    import ma2ml
    ma2ml.list_envs()                                   # the registered env ids
    env = ma2ml.make("ma2ml/AutoML-DigitsBench-v0")     # a PettingZoo ParallelEnv
    learner = ma2ml.make_learner("ma2ml", env, seed=0)  # any registered learner
    learner.learn(env, budget=100, batch_size=10)
    best = ma2ml.Experiment(env="ma2ml/AutoML-DigitsBench-v0", learner="ma2ml", budget=64,
                            batch_size=8, seed=0, out="runs/bench-ma2ml").run()  # a resumable run folder

:class:`Experiment` (:mod:`ma2ml.experiment`) owns what the game leaves out: the evaluation store,
seeds, where evaluations run (``executor="process"``, ``"ray"``), checkpoints and resume, and the
run folder; ``ma2ml search`` is a thin wrapper over it and ``ma2ml compare`` over
:class:`ma2ml.comparison.Comparison` (learners x seeds of experiments).

Packages: :mod:`ma2ml.envs` (the game: env modules, spaces, tasks, reward), :mod:`ma2ml.agents` (the
MA2ML family), :mod:`ma2ml.baselines`, :mod:`ma2ml.learners` (the registry), and the machinery
beside the game: :mod:`ma2ml.experiment`, :mod:`ma2ml.comparison`, :mod:`ma2ml.training`, :mod:`ma2ml.models`,
:mod:`ma2ml.runtime`, :mod:`ma2ml.bench`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ma2ml.experiment import Experiment

__version__ = "0.1.0"

__all__ = ["Experiment", "list_envs", "make", "make_learner", "__version__"]


def make(env_id: str, **kwargs: Any) -> Any:
    """The PettingZoo ``ParallelEnv`` ``env_id`` (``ma2ml.list_envs()``) with ``kwargs``; one ``UserError``
    for an unknown id or an argument the env does not take. (``pettingzoo.make("parallel", env_id)`` and
    ``gymnasium.make("ma2ml/JointAutoML-...")`` work too, after ``import ma2ml.envs``.)"""
    from ma2ml.envs.registration import make_parallel

    return make_parallel(env_id, **kwargs)


def list_envs() -> list[str]:
    """The registered PettingZoo ids of ma2ml's pipeline envs (the token views: ``ma2ml.envs.token_env_ids()``)."""
    from ma2ml.envs.registration import env_ids

    return env_ids()


def make_learner(name: str, env: Any, seed: int = 0, **overrides: Any) -> Any:
    """Learner ``name`` (``ma2ml list``, or ``"module:Class"``) for ``env``; see :func:`ma2ml.learners.make_learner`."""
    from ma2ml.learners import make_learner as make

    return make(name, env, seed=seed, **overrides)


def __getattr__(name: str) -> Any:
    """``ma2ml.Experiment``, imported on first use (so ``import ma2ml`` stays light)."""
    if name == "Experiment":
        from ma2ml.experiment import Experiment

        return Experiment
    raise AttributeError(f"module 'ma2ml' has no attribute {name!r}")
