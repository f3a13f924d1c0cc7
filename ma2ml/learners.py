"""The learner registry: MA2ML, MA2ML-Lite, MA2ML on-policy, the baselines and yours, by name.

It sits above :mod:`ma2ml.agents` (the MA2ML family and the :class:`~ma2ml.agents.Learner` base) and
:mod:`ma2ml.baselines`, and names their classes by string, so neither package knows of it.

A registry in Gymnasium's style: each name maps to string entry points of a learner class
and its config dataclass, imported only when that learner is made (importing this package
loads neither torch nor SB3 nor Optuna).

    from ma2ml.learners import make_learner, learner_names
    learner = make_learner("ma2ml", env, seed=0, kl_coef=0.05)
    learner.learn(env, budget=64, batch_size=8)

=================  ==================================================  =======================
name               what                                                config
=================  ==================================================  =======================
ma2ml              per-agent policies, critic, replay, KL to rho        MA2MLConfig
ma2ml-onpolicy     the same, critic on the current batch only           MA2MLOnPolicyConfig
ma2ml-lite         per-agent REINFORCE, counterfactual baseline         MA2MLLiteConfig
reinforce          one LSTM controller over all tokens, REINFORCE       ReinforceConfig
ppo                Stable-Baselines3 PPO on the joint view              PPOConfig
a2c                Stable-Baselines3 A2C on the joint view              A2CConfig
random             uniform random search                                RandomSearchConfig
evolution          regularized (aging) evolution                        EvolutionConfig
independent        per-agent bandits, blind to interactions (control)   IndependentConfig
mappo              TorchRL MAPPO on the token view (extra "marl")       MAPPOConfig
ippo               TorchRL IPPO on the token view (extra "marl")        IPPOConfig
qmix               TorchRL QMIX on the token view (extra "marl")        QMixConfig
vdn                TorchRL VDN on the token view (extra "marl")         VDNConfig
tpe                Optuna's TPE sampler (optional extra ``optuna``)     TPEConfig
=================  ==================================================  =======================

Learners of your own, three ways (each then works in ``ma2ml search`` and ``compare``):

* :func:`register_learner` (a :class:`Learner` subclass and, optionally, its config
  dataclass, as ``"module:Class"`` strings or the objects themselves);
* an installed package's entry point in the group ``ma2ml.learners`` (:data:`ENTRY_POINT_GROUP`):
  its name is the learner name, its value ``"module:Class"``, a :class:`Learner` subclass whose
  ``config_class`` is its config. Entry points are read the first time the registry is
  listed or looked up; a name already registered (every built-in) keeps its learner, and the
  clashing entry point is skipped with a warning that names it;
* a ``"module:Class"`` string in place of a name (``make_learner("my_pkg.mod:MyLearner", env)``,
  ``ma2ml search --learner my_pkg.mod:MyLearner``): the module is imported then; a module that
  does not import, or a class that is not a :class:`Learner` subclass, is one ``ValueError``.
"""
from __future__ import annotations

import importlib
import inspect
import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ma2ml.envs.core.errors import UserError

if TYPE_CHECKING:
    from ma2ml.agents.base import Learner, LearnerConfig
    from ma2ml.envs.core.protocol import AutoMLEnv

ENTRY_POINT_GROUP = "ma2ml.learners"
"""The entry-point group of learners from installed packages (name = learner name, value ``module:Class``)."""


@dataclass(frozen=True)
class LearnerSpec:
    """A registered learner."""

    name: str
    """The registry name (``make_learner(name, ...)``)."""
    entry_point: Any
    """The :class:`Learner` subclass, or ``"module:Class"``."""
    config_entry_point: Any = None
    """Its config dataclass, or ``"module:Class"``; None: the learner class's ``config_class``."""
    description: str = ""
    """One line for ``ma2ml list``."""


_REGISTRY: dict[str, LearnerSpec] = {}
_entry_points_read = False


def register_learner(name: str, entry_point: Any, config_entry_point: Any = None, description: str = "",
                     *, overwrite: bool = False) -> None:
    """Add a learner to the registry (``ValueError`` if the name is taken and not ``overwrite``).

    ``config_entry_point`` None takes the learner class's ``config_class``.
    """
    if name in _REGISTRY and not overwrite:
        raise UserError(f"learner {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = LearnerSpec(name, entry_point, config_entry_point, description)


def _read_entry_points() -> None:
    """Register the learners of installed packages (:data:`ENTRY_POINT_GROUP`), once; taken names are skipped."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        package = point.dist.name if point.dist is not None else "an installed package"
        taken = _REGISTRY.get(point.name)
        if taken is None:
            register_learner(point.name, point.value, None, f"{point.value} (from {package})")
        elif taken.entry_point != point.value:
            warnings.warn(f"the {ENTRY_POINT_GROUP} entry point {point.name} = {point.value} of {package} is "
                          f"skipped: learner {point.name!r} is already registered as {_named(taken.entry_point)}; "
                          "rename the entry point", stacklevel=3)


def learner_names() -> list[str]:
    """The registered learner names in registration order: the built-ins first; entry points join when the
    registry is first listed or looked up."""
    _read_entry_points()
    return list(_REGISTRY)


def learner_spec(name: str) -> LearnerSpec:
    """The spec of a registered name, or of ``"module:Class"`` (a :class:`Learner` subclass, imported now)."""
    _read_entry_points()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        learner_class = _learner_class(name, name)
        return LearnerSpec(name, learner_class, None, (learner_class.__doc__ or "").strip().split("\n")[0])
    raise UserError(f"unknown learner {name!r}; registered learners are {learner_names()} (or name a Learner "
                     "subclass as 'module:Class')")


def _named(entry_point: Any) -> str:
    if isinstance(entry_point, str):
        return entry_point
    return f"{getattr(entry_point, '__module__', '?')}:{getattr(entry_point, '__qualname__', repr(entry_point))}"


def _load(entry_point: Any) -> Any:
    if not isinstance(entry_point, str):
        return entry_point
    module, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(module), attr)


def _learner_class(name: str, entry_point: Any) -> type[Learner]:
    """The class of learner ``name``; one ``ValueError`` if its module does not import or it is no Learner."""
    from ma2ml.agents.base import Learner

    found = entry_point
    if isinstance(entry_point, str):
        module, _, attr = entry_point.partition(":")
        if not module or not attr:
            raise UserError(f"learner {name!r}: {entry_point!r} is not of the form 'module:Class'")
        try:
            found = importlib.import_module(module)
        except Exception as exc:  # the user's module: whatever stops it importing is one error
            raise UserError(f"learner {name!r}: cannot import module {module!r} ({type(exc).__name__}: {exc}); "
                             "install it or put its folder on PYTHONPATH") from exc
        for part in attr.split("."):
            if not hasattr(found, part):
                raise UserError(f"learner {name!r}: module {module!r} has no attribute {attr!r}")
            found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, Learner)):
        what = f"{entry_point} is {found!r}" if isinstance(entry_point, str) else repr(found)
        raise UserError(f"learner {name!r}: {what}, not a subclass of ma2ml.agents.Learner")
    if inspect.isabstract(found):
        missing = sorted(getattr(found, "__abstractmethods__", ()))
        raise UserError(f"learner {name!r}: {found.__qualname__} is abstract (it does not define {missing}); name a "
                        "concrete Learner subclass, or a registered learner (see `ma2ml list`)")
    return found


def _classes(name: str) -> tuple[type[Learner], type[LearnerConfig]]:
    """Learner ``name``'s class and config dataclass."""
    spec = learner_spec(name)
    learner_class = _learner_class(name, spec.entry_point)
    config = spec.config_entry_point
    return learner_class, learner_class.config_class if config is None else _load(config)


def _configure(name: str, config_class: type[LearnerConfig], overrides: dict[str, Any]) -> LearnerConfig:
    valid = [f.name for f in fields(config_class)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UserError(f"learner {name!r} has no setting {unknown}; its settings are {valid}")
    return config_class(**overrides)


def learner_config(name: str, **overrides: Any) -> LearnerConfig:
    """The config of learner ``name`` with ``overrides`` applied (unknown fields: one ``ValueError``)."""
    return _configure(name, _classes(name)[1], overrides)


def make_learner(name: str, env: AutoMLEnv, seed: int = 0, **overrides: Any) -> Learner:
    """Build learner ``name`` (or ``"module:Class"``) for ``env``'s agents and spaces, its config defaults
    updated by ``overrides``."""
    learner_class, config_class = _classes(name)
    return learner_class(env, _configure(name, config_class, overrides), seed=seed)


TUNED_LEARNERS = ("mappo", "ippo", "qmix", "vdn", "ppo", "a2c", "reinforce", "ma2ml", "ma2ml-onpolicy", "ma2ml-lite")
"""The learners whose defaults come from the tuning sweep (``benchmarks/tune_learners.py``)."""


def tuned_config(name: str) -> dict[str, Any] | None:
    """The record of learner ``name``'s tuning, shipped as ``ma2ml/tuned/<name>.json`` (BenchMARL's
    ``fine_tuned`` analogue), or None for a learner that was not tuned.

    ``record["config"]`` holds the tuned settings, which are the config dataclass's defaults
    (tests/test_tuned.py), ``record["previous_defaults"]`` the settings before the sweep (pass them as
    overrides to rerun an older result), ``record["tuned_on"]`` the tasks, seeds and grid, ``record["score"]``
    the sweep's scores (``benchmarks/results/tuning/sweep.md``).
    """
    import json
    from importlib.resources import files

    learner_spec(name)  # an unknown name is one ValueError
    path = files("ma2ml").joinpath("tuned", f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


register_learner("ma2ml", "ma2ml.agents.ma2ml:MA2ML", "ma2ml.agents.ma2ml:MA2MLConfig",
                 "MA2ML: per-agent LSTM policies, centralized critic, replay, KL to target policies")
register_learner("ma2ml-onpolicy", "ma2ml.agents.ma2ml:MA2ML", "ma2ml.agents.ma2ml:MA2MLOnPolicyConfig",
                 "MA2ML without replay (critic and policies on the current batch)")
register_learner("ma2ml-lite", "ma2ml.agents.ma2ml:MA2ML", "ma2ml.agents.ma2ml:MA2MLLiteConfig",
                 "MA2ML-Lite: per-agent REINFORCE with the counterfactual baseline")
register_learner("reinforce", "ma2ml.baselines.reinforce:ReinforceController",
                 "ma2ml.baselines.reinforce:ReinforceConfig",
                 "one LSTM controller over all modules, REINFORCE with a moving-average baseline")
register_learner("ppo", "ma2ml.baselines.sb3:PPO", "ma2ml.baselines.sb3:PPOConfig",
                 "Stable-Baselines3 PPO on the joint view")
register_learner("a2c", "ma2ml.baselines.sb3:A2C", "ma2ml.baselines.sb3:A2CConfig",
                 "Stable-Baselines3 A2C on the joint view")
register_learner("random", "ma2ml.baselines.random_search:RandomSearch",
                 "ma2ml.baselines.random_search:RandomSearchConfig", "uniform random search")
register_learner("evolution", "ma2ml.baselines.evolution:RegularizedEvolution",
                 "ma2ml.baselines.evolution:EvolutionConfig", "regularized (aging) evolution")
register_learner("independent", "ma2ml.baselines.independent:IndependentBandits",
                 "ma2ml.baselines.independent:IndependentConfig",
                 "per-agent Thompson-sampling bandits, blind to interactions (the coordination control)")
register_learner("tpe", "ma2ml.baselines.optuna_samplers:TPE", "ma2ml.baselines.optuna_samplers:TPEConfig",
                 "Optuna's TPE sampler, multivariate, constant liar (needs the optuna extra)")
register_learner("mappo", "ma2ml.baselines.torchrl_marl:MarlPPO", "ma2ml.baselines.torchrl_marl:MAPPOConfig",
                 "MAPPO (TorchRL): token-level PPO, centralized critic (needs the marl extra)")
register_learner("ippo", "ma2ml.baselines.torchrl_marl:MarlPPO", "ma2ml.baselines.torchrl_marl:IPPOConfig",
                 "IPPO (TorchRL): token-level PPO, independent critics (needs the marl extra)")
register_learner("qmix", "ma2ml.baselines.torchrl_qmix:QMix", "ma2ml.baselines.torchrl_qmix:QMixConfig",
                 "QMIX (TorchRL): token-level Q-learning, state-conditioned monotonic mixer (needs the marl extra)")
register_learner("vdn", "ma2ml.baselines.torchrl_qmix:QMix", "ma2ml.baselines.torchrl_qmix:VDNConfig",
                 "VDN (TorchRL): token-level Q-learning, the agents' values summed (needs the marl extra)")


__all__ = ["ENTRY_POINT_GROUP", "LearnerSpec", "TUNED_LEARNERS", "learner_config", "learner_names", "learner_spec",
           "make_learner", "register_learner", "tuned_config"]
