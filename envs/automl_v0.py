"""# AutoML (v0)

A cooperative multi-agent game over a machine-learning pipeline (MA2ML, CVPR 2023): each
module of the pipeline (data augmentation, architecture, hyper-parameters) is an agent;
together they pick a pipeline, the environment trains it and all agents share the reward.

| Import             | `from ma2ml.envs import automl_v0`                            |
|--------------------|---------------------------------------------------------------|
| Actions            | MultiDiscrete per agent                                       |
| Parallel API       | Yes                                                           |
| Manual control     | No                                                            |
| Agents             | `agents = ["aug", "nas", "hpo"]` (any subset, or user modules) |
| Agents count       | 1..n, fixed at construction                                   |
| Action shape       | the module's decision tokens                                  |
| Observation shape  | (6,)                                                          |
| Registered ids     | `ma2ml/AutoML-Digits-v0`, `-CIFAR10-v0`, `-CIFAR100-v0`, `-DigitsBench-v0` (table), `-DigitsHard-v0` (hard table), `-ImageNet-v0` |

## Agents and actions

* `aug`: AutoAugment's space: K sub-policies (default 5), each two operations of
  (op type among 16, probability among 11 levels, magnitude among 10 levels).
* `nas`: NASNet-style normal and reduction cells of B blocks; each block picks two inputs
  among earlier nodes and two ops among 7, summed.
* `hpo`: learning rate, weight decay, momentum, batch size, label smoothing, drop path.

`action_space(agent)` is a `MultiDiscrete` of that module's token sizes; the layout and
the token names are in `env.spaces[agent].token_names`. A module that is not an agent is
fixed to the task's default (no augmentation, a NASNet-A-like cell, default HParams).

A token is an integer in 0..n-1: a Python or NumPy integer, or an integral float such as
`2.0` (what float-valued policies emit). Booleans, non-integral or non-finite floats,
strings, None, complex numbers and other objects are refused. Every entry point checks
tokens the same way (`ModuleSpace.check`): `step`, `evaluate`, `evaluate_batch`, the joint
view and the table evaluator; a bad token is one `ValueError` naming the agent, the token
and its valid range, raised before anything is evaluated.

## Observations and state

Every agent observes the same task descriptor S (float32, shape (6,)): log10 train size,
log10 classes, log2(image size)/8, channels/3, log10(FLOPs constraint)/10 and the reward
exponent. `state()` returns S too, for centralized critics. `observation_space(agent)` and
`state_space` are both `Box(-10, 10, (6,), float32)`, the same for every task and argument:
the argument ranges below keep S inside it.

## Episode, reward and infos

One step. `step(actions)` builds the pipeline, trains it for the task's proxy budget on the
train split and scores it on the validation split. Every agent gets the same reward

    R = Acc_val * (FLOPs / C) ** w,   w = reward_exponent if FLOPs > C (or soft) else 0,

FLOPs in multiply-adds, C = `flops_constraint`. With a `training_budget` B the reward is
multiplied by (cost / B) ** v above B, v = `budget_exponent`, cost = FLOPs x epochs trained
(the hard tier, `ma2ml/AutoML-DigitsHard-v0`, plays with B and v = -3). A failed training (status `diverged`,
`oom`, `timeout`, `failed`) gets R = 0. All agents terminate after the step.

`infos[agent]` holds the evaluation record: `status`, `val_acc`, `test_acc` (reported,
never in the reward), `flops`, `params`, `curve` (per-epoch val accuracy), `seed`,
`pipeline` (decoded choices), `error`, and `reward`. Wall-clock `train_seconds` is left out
unless `info_timings=True`, so identically seeded runs have identical infos; the full
record, timing included, is `env.last_record`.

## Arguments

The env class takes the game and little else (eight parameters):

    AutoMLParallelEnv(task=None, agents=None, spaces=None, evaluator="train", reward_fn=None,
                      train_seed=None, info_timings=False, render_mode=None)
    env.attach(executor=None, workers=None, store=None, cache=False, run_id=None, device=None,
               time_limit=None)          # the runtime: where evaluations run, where they are recorded

The registered ids (`pettingzoo.make`, `gymnasium.make`, `ma2ml.make`, `--env-arg`) call the
factory `parallel_env(**kwargs)`, which takes everything as flat keyword arguments, builds the
evaluator, the `FlopsReward` and the runtime from them, and checks each first:

    parallel_env(task=None, agents=None, spaces=None, evaluator="train",
                 flops_constraint=None, reward_exponent=-0.07, soft_constraint=False,
                 training_budget=None, budget_exponent=0.0, data_dir=None, epochs=None,
                 device=None, time_limit=None, cpu_threads=1, train_seed=None, info_timings=False,
                 executor=None, workers=None, store=None, cache=False, run_id=None, render_mode=None)

* `task`: a registered task name (`ma2ml list`) or a `Task` (None: `"digits"`).
* `agents`: the enabled modules, in order; default: the task's modules (aug, nas, hpo).
* `spaces`: `{agent: ModuleSpace}` overriding or adding module spaces (user modules).
* `evaluator`: `"train"` or an `Evaluator` instance (e.g. the benchmark table). An `Evaluator`
  decides the task, the spaces and the training: `task`, `spaces`, `data_dir`, `epochs` and
  `cpu_threads` do not apply then, and giving one is a `UserError` that names it.
* `flops_constraint`: C in multiply-adds (default: the task's), a finite number in
  [1, 1e100]; `reward_exponent`: w, a finite number in [-10, 0]; `soft_constraint`: apply
  w below C too. `training_budget`: B in multiply-adds x epochs (None: no training budget,
  the poster's reward), a finite number in [1, 1e100]; `budget_exponent`: v in [-10, 0]
  (the hard tier's ids set both). Outside these ranges (NaN and infinities included) is a `UserError`.
  Every other argument is type-checked too (`ARGUMENTS`): `train_seed` an integer in 0..2**32-1,
  `cpu_threads` and `workers` in 1..1024, `time_limit` a number > 0, `epochs` in 1..10,000,
  `soft_constraint`, `info_timings` and `cache` True or False (not 1 or "yes").
* `data_dir`: dataset folder for tasks that need one; a missing one (None, or a folder that
  does not exist) is a `DatasetNotFoundError` at construction, naming the folder and what to
  put there. `epochs`: override the proxy budget; `time_limit`: seconds per evaluation;
  `cpu_threads`: torch threads of a CPU training (default 1; None: torch's setting).
* `device`: None or "auto" (CUDA when a GPU is visible, else the CPU), "cpu", "cuda" or
  "cuda:N" (N < the visible GPUs); checked at construction (`resolve_device`), so "cuda"
  without a GPU is a `ValueError` then, not a failed evaluation at every step.
* `train_seed`: fixed training seed; None draws one per episode from the generator seeded
  by `reset(seed=...)`.
* `executor`: where `evaluate_batch` (and, when set, `step`) runs: None (here, in order),
  `"inprocess"`, `"process"` (a local pool: one worker per GPU, else `workers` CPU
  workers, default one per core), `"ray"`, or an `Executor` (`ma2ml.runtime.executors`).
  Executors built from a name kill an evaluation after `time_limit` seconds from outside
  the worker and retry a crashed worker once; the env closes them in `close()`. The
  executor is attached to the env's evaluator (a shallow copy of an `Evaluator` you passed,
  which is never changed).
* `store`: an `EvalStore` or a file path (`ma2ml.runtime.store`): every evaluation is written
  there before it is returned; `run_id` names the run (re-using one resumes it from its
  first evaluation: stored evaluations are not run again; `env.run_log.seek(n)` continues
  at evaluation n); `cache=True` reuses the record of a pipeline already evaluated under
  the same settings and seed policy.

## Version history

* v0: initial release.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces as gym_spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils import OrderEnforcingWrapper, parallel_to_aec

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.evaluator import Evaluator, resolve_device
from ma2ml.envs.core.fields import Annotated, Range, check_value
from ma2ml.envs.core.records import Actions, EvalRecord, checked_seed, decode_actions, seeds_from
from ma2ml.envs.core.reward import FlopsReward
from ma2ml.envs.spaces import ModuleSpace
from ma2ml.envs.tasks import DESCRIPTOR_FIELDS, Task, descriptor, get_task, load_splits

if TYPE_CHECKING:  # the machinery loads only when an env asks for it (a table env never trains or stores)
    from ma2ml.runtime.executors import Executor
    from ma2ml.runtime.runlog import RunLog
    from ma2ml.runtime.store import EvalStore

EVALUATORS = ("train",)

OBS_BOUND = 10.0
"""The descriptor's Box is [-OBS_BOUND, OBS_BOUND] in every entry, for every task and argument."""
FLOPS_CONSTRAINT_RANGE = (1.0, 1e100)
"""Valid C in multiply-adds: the descriptor's log10(C)/10 stays in [0, 10]."""
REWARD_EXPONENT_RANGE = (-10.0, 0.0)
"""Valid w: a penalty (w <= 0), observed as is by the descriptor."""
MAX_SEED = 2**32 - 1
"""Largest training seed (what numpy and torch both take)."""
ARGUMENTS: dict[str, Any] = {
    "soft_constraint": bool,
    "epochs": Annotated[int | None, Range(1, 10_000)],
    "time_limit": Annotated[float | None, Range(0, 1e7, low_open=True)],
    "cpu_threads": Annotated[int | None, Range(1, 1024)],
    "train_seed": Annotated[int | None, Range(0, MAX_SEED)],
    "info_timings": bool,
    "workers": Annotated[int | None, Range(1, 1024)],
    "cache": bool,
    "run_id": str | None,
}
"""The type and valid values of the plain arguments (:func:`~ma2ml.envs.core.fields.check_value`)."""
DEFAULT_TASK = "digits"
"""The task of ``task=None``."""
DEFAULT_REWARD_EXPONENT = -0.07
"""MnasNet's w, applied above C."""
TRAIN_DEFAULTS: dict[str, Any] = {"task": None, "spaces": None, "data_dir": None, "epochs": None, "cpu_threads": 1}
"""Arguments of the train evaluator and their defaults (``task=None`` is :data:`DEFAULT_TASK`): with an
``Evaluator`` given, each must be left at its default (the evaluator decides them)."""


def _in_range(name: str, value: Any, bounds: tuple[float, float], unit: str = "") -> float:
    """``value`` as a float when it is a finite real number within ``bounds``; else one ``ValueError``."""
    low, high = bounds
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    try:
        number = float(value) if real else math.nan
    except OverflowError:  # an int beyond float's range
        number = math.inf
    if not (math.isfinite(number) and low <= number <= high):
        raise UserError(f"{name} must be a finite number in [{low:g}, {high:g}]{unit}, got {value!r}")
    return number


def resolve_spaces(task: Task, agents: Sequence[str] | None,
                   spaces: Mapping[str, ModuleSpace] | None) -> dict[str, ModuleSpace]:
    """The agents' spaces: the task's defaults, overridden or extended by ``spaces``."""
    available = {**task.make_spaces(), **dict(spaces or {})}
    if agents is None:
        agents = list(available)
    agents = list(agents)
    if not agents:
        raise UserError(f"agents must name at least one module; available modules are {list(available)}")
    if len(set(agents)) != len(agents):
        raise UserError(f"agents must be distinct, got {agents}")
    unknown = [a for a in agents if a not in available]
    if unknown:
        raise UserError(f"unknown agents {unknown} for task {task.name!r}; available modules are {list(available)}")
    bad = [a for a in agents if not isinstance(available[a], ModuleSpace)]
    if bad:
        raise UserError(f"spaces for {bad} must be ModuleSpace instances")
    return {a: available[a] for a in agents}


class AutoMLParallelEnv(ParallelEnv):
    """The AutoML game (see the module docstring)."""

    metadata = {"name": "automl_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        task: str | Task | None = None,
        agents: Sequence[str] | None = None,
        spaces: Mapping[str, ModuleSpace] | None = None,
        evaluator: str | Evaluator = "train",
        reward_fn: FlopsReward | None = None,
        train_seed: int | None = None,
        info_timings: bool = False,
        render_mode: str | None = None,
    ) -> None:
        """The game: ``task`` (a registered name or a :class:`~ma2ml.envs.tasks.Task`; None: ``"digits"``),
        the ``agents`` and their ``spaces``, the ``evaluator`` that scores a pipeline (``"train"``: a
        :class:`~ma2ml.training.evaluators.TrainEvaluator` at the task's proxy budget, or an
        :class:`~ma2ml.envs.core.evaluator.Evaluator`, which then decides the task and the spaces), the
        reward (a :class:`~ma2ml.envs.core.reward.FlopsReward`; None: the task's C with w = -0.07),
        ``train_seed`` (None: drawn per episode) and ``info_timings`` (wall-clock seconds in ``infos``).
        Where evaluations run and where they are recorded is :meth:`attach`'s; the registered factory
        :func:`parallel_env` takes all of it as flat keyword arguments."""
        if render_mode is not None:
            raise UserError(f"render_mode {render_mode!r} is not supported; this env does not render")
        train_seed = check_value("", "train_seed", train_seed, ARGUMENTS["train_seed"])
        info_timings = check_value("", "info_timings", info_timings, ARGUMENTS["info_timings"])
        if isinstance(evaluator, Evaluator):
            _refuse_not_applicable(evaluator, {"task": task, "spaces": spaces})
            if agents is not None and list(agents) != list(evaluator.spaces):
                raise UserError(f"agents {list(agents)} differ from the evaluator's {list(evaluator.spaces)}")
            self.task, self.spaces, self.evaluator = evaluator.task, dict(evaluator.spaces), evaluator
        elif isinstance(evaluator, str) and evaluator == "train":
            from ma2ml.training.evaluators import TrainEvaluator

            self.task = get_task(DEFAULT_TASK if task is None else task)
            self.spaces = resolve_spaces(self.task, agents, spaces)
            self.evaluator = TrainEvaluator(self.task, self.spaces)
        else:
            raise UserError(f"unknown evaluator {evaluator!r}; valid values are {list(EVALUATORS)} or an Evaluator")
        if reward_fn is None:
            reward_fn = flops_reward(self.task)
        if not isinstance(reward_fn, FlopsReward):
            raise UserError(f"reward_fn = {reward_fn!r} is invalid; valid values are None or a FlopsReward")
        self.reward_fn = reward_fn
        self.train_seed = train_seed
        self.info_timings = info_timings
        self.render_mode = render_mode
        self.possible_agents = list(self.spaces)
        self.agents: list[str] = []
        self._action_spaces = {a: s.action_space() for a, s in self.spaces.items()}
        self._obs_space = gym_spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(len(DESCRIPTOR_FIELDS),), dtype=np.float32)
        self.state_space = gym_spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(len(DESCRIPTOR_FIELDS),), dtype=np.float32)
        """The space of :meth:`state` (the descriptor, like the observations)."""
        self._state: np.ndarray | None = None
        self.last_record: EvalRecord | None = None
        self.np_random, _ = seeding.np_random(None)
        self._owned: list[Executor | EvalStore] = []
        self.run_log: RunLog | None = None
        """The run's record in a store (:meth:`attach` with ``store=``); None: nothing is stored."""

    # -- the runtime: where evaluations run and where they are recorded --------------------------
    def attach(self, executor: str | Executor | None = None, workers: int | None = None,
               store: str | EvalStore | None = None, cache: bool = False, run_id: str | None = None,
               device: str | None = None, time_limit: float | None = None) -> AutoMLParallelEnv:
        """Run evaluations through ``executor`` (``"inprocess"``, ``"process"`` with ``workers``, ``"ray"`` or
        an :class:`~ma2ml.runtime.executors.Executor`; built from a name, it kills an evaluation after
        ``time_limit`` seconds and uses ``device``) and record every one in ``store`` (a path or an
        :class:`~ma2ml.runtime.store.EvalStore`) under ``run_id``, reusing earlier records with ``cache``.
        The executor goes on a shallow copy of the evaluator (the caller's object is never changed); what
        was built from a name is closed by :meth:`close`. Returns the env. Call it once, before the first
        evaluation."""
        workers = check_value("", "workers", workers, ARGUMENTS["workers"])
        cache = check_value("", "cache", cache, ARGUMENTS["cache"])
        run_id = check_value("", "run_id", run_id, ARGUMENTS["run_id"])
        time_limit = check_value("", "time_limit", time_limit, ARGUMENTS["time_limit"])
        if workers is not None and executor != "process":
            raise UserError(f"workers={workers} needs executor='process'")
        if store is None and (cache or run_id is not None):
            raise UserError("cache=True and run_id need a store= (an EvalStore or a file path)")
        if isinstance(executor, str):
            from ma2ml.runtime.executors import make_executor

            remote = executor != "inprocess"
            executor = make_executor(executor, workers=workers, device=device if executor == "process" else None,
                                     time_limit=time_limit if remote else None)
            self._owned.append(executor)
        if executor is not None:
            self.evaluator = copy.copy(self.evaluator)  # never change the caller's object
            self.evaluator.executor = executor
        if store is not None:
            from ma2ml.runtime.runlog import RunLog
            from ma2ml.runtime.store import EvalStore

            if not isinstance(store, EvalStore):
                store = EvalStore(store)
                self._owned.append(store)
            policy = "drawn" if self.train_seed is None else f"fixed:{self.train_seed}"
            self.run_log = RunLog(store, self.evaluator, run_id=run_id,
                                  env_id=f"{self.metadata['name']}/{self.task.name}", seed_policy=policy, cache=cache)
        return self

    # -- spaces ---------------------------------------------------------------------------------
    def observation_space(self, agent: str) -> gym_spaces.Box:
        self._check_agent(agent)
        return self._obs_space

    def action_space(self, agent: str) -> gym_spaces.MultiDiscrete:
        self._check_agent(agent)
        return self._action_spaces[agent]

    def _check_agent(self, agent: str) -> None:
        if agent not in self._action_spaces:
            raise UserError(f"unknown agent {agent!r}; this env's agents are {self.possible_agents}")

    # -- the game -------------------------------------------------------------------------------
    def descriptor(self) -> np.ndarray:
        """The task descriptor S (computed once; loads the dataset's sizes)."""
        if self._state is None:
            self._state = self._make_descriptor()
        return self._state.copy()

    def _make_descriptor(self) -> np.ndarray:
        shape, train_size, classes = self.evaluator.data_facts()
        return descriptor(shape, train_size, classes, self.reward_fn.constraint, self.reward_fn.exponent)

    def state(self) -> np.ndarray:
        return self.descriptor()

    def reset(self, seed: int | None = None, options: dict | None = None):
        seed = None if seed is None else checked_seed(seed)  # NumPy integers too, never a bool
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
            self.evaluator.new_run()  # a seeded reset starts a new run (a table's draws among replicates)
            for i, space in enumerate(self._action_spaces.values()):
                space.seed(seed + i)
            self._obs_space.seed(seed)
            self.state_space.seed(seed)
        self.agents = list(self.possible_agents)
        obs = self.descriptor()
        return {a: obs.copy() for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: Actions):
        if not self.agents:
            raise UserError("step() called on a finished episode; call reset() first")
        record = self.evaluate(actions)
        reward = self.reward(record)
        info = record.info(reward, timings=self.info_timings)
        obs = self.descriptor()
        agents, self.agents = self.agents, []
        return (
            {a: obs.copy() for a in agents},
            {a: reward for a in agents},
            {a: True for a in agents},
            {a: False for a in agents},
            {a: dict(info) for a in agents},
        )

    # -- evaluation, also used directly by learners -------------------------------------------
    def reward(self, record: EvalRecord) -> float:
        """The shared reward of an evaluation; the training budget (if any) charges the epochs it
        trained, one per entry of its validation curve."""
        return self.reward_fn(record.val_acc, record.flops, record.status, len(record.curve))

    def next_seeds(self, n: int) -> list[int]:
        """Training seeds of the next ``n`` evaluations (fixed, or drawn from the env's generator)."""
        return [self.train_seed] * n if self.train_seed is not None else seeds_from(self.np_random, n)

    def evaluate(self, actions: Actions) -> EvalRecord:
        if self.run_log is None and self.evaluator.executor is None:
            self.last_record = self.evaluator.evaluate(actions, self.next_seeds(1)[0])
        else:
            self.last_record = self.evaluate_batch([actions])[0]
        return self.last_record

    def evaluate_batch(self, batch: Sequence[Actions]) -> list[EvalRecord]:
        """Evaluate several joint actions (concurrently through the executor, stored first with a store)."""
        if isinstance(batch, (str, bytes, Mapping)) or not isinstance(batch, (Sequence, np.ndarray)):
            raise UserError(f"evaluate_batch takes a list of joint actions ({{agent: tokens}} dicts), got "
                            f"{type(batch).__name__}")
        if self.run_log is not None:
            return self.run_log.evaluate_batch(list(batch), self.next_seeds(len(batch)))
        return self.evaluator.evaluate_batch(list(batch), self.next_seeds(len(batch)))

    def describe(self, actions: Actions) -> str:
        """A joint action in human terms, one line per agent."""
        configs = decode_actions(self.spaces, actions)
        return "\n".join(f"{a}: {self.spaces[a].describe(c)}" for a, c in configs.items())

    def close(self) -> None:
        close = getattr(self.evaluator, "close", None)
        if close is not None:
            close()
        for owned in self._owned:
            owned.close()
        self._owned = []


def parallel_env(
    task: str | Task | None = None,
    agents: Sequence[str] | None = None,
    spaces: Mapping[str, ModuleSpace] | None = None,
    evaluator: str | Evaluator = "train",
    flops_constraint: float | None = None,
    reward_exponent: float = -0.07,
    soft_constraint: bool = False,
    training_budget: float | None = None,
    budget_exponent: float = 0.0,
    data_dir: str | None = None,
    epochs: int | None = None,
    device: str | None = None,
    time_limit: float | None = None,
    cpu_threads: int | None = 1,
    train_seed: int | None = None,
    info_timings: bool = False,
    executor: str | Executor | None = None,
    workers: int | None = None,
    store: str | EvalStore | None = None,
    cache: bool = False,
    run_id: str | None = None,
    render_mode: str | None = None,
) -> AutoMLParallelEnv:
    """The registered entry point (``pettingzoo.make``, ``gymnasium.make``, ``--env-arg``): the env from flat
    keyword arguments (the module docstring's "Arguments"). It builds the evaluator (the training options),
    the :class:`FlopsReward` and the runtime (:meth:`AutoMLParallelEnv.attach`), each argument checked
    first: one ``UserError`` naming the first bad one, before anything is built."""
    checked = {name: check_value("", name, value, ARGUMENTS[name]) for name, value in (
        ("soft_constraint", soft_constraint), ("epochs", epochs), ("time_limit", time_limit),
        ("cpu_threads", cpu_threads))}
    soft_constraint, epochs, time_limit, cpu_threads = checked.values()
    resolve_device(device)  # a bad device is one UserError now, not a failed evaluation at every step
    if isinstance(evaluator, Evaluator):
        _refuse_not_applicable(evaluator, {"task": task, "spaces": spaces, "data_dir": data_dir, "epochs": epochs,
                                           "cpu_threads": cpu_threads})
    elif isinstance(evaluator, str) and evaluator == "train":
        from ma2ml.training.evaluators import TrainEvaluator

        game = get_task(DEFAULT_TASK if task is None else task)
        chosen = resolve_spaces(game, agents, spaces)
        if game.needs_data_dir and (data_dir is None or not Path(data_dir).expanduser().is_dir()):
            load_splits(game, data_dir)  # raises: the loader's message names the folder and what to put there
        evaluator = TrainEvaluator(game, chosen, data_dir=data_dir, device=device, epochs=epochs,
                                   time_limit=time_limit, cpu_threads=cpu_threads)
    else:
        raise UserError(f"unknown evaluator {evaluator!r}; valid values are {list(EVALUATORS)} or an Evaluator")
    reward_fn = FlopsReward(
        _in_range("flops_constraint", evaluator.task.flops_constraint if flops_constraint is None
                  else flops_constraint, FLOPS_CONSTRAINT_RANGE, " multiply-adds"),
        _in_range("reward_exponent", reward_exponent, REWARD_EXPONENT_RANGE),
        soft_constraint,
        None if training_budget is None else _in_range("training_budget", training_budget, FLOPS_CONSTRAINT_RANGE,
                                                       " multiply-adds x epochs"),
        _in_range("budget_exponent", budget_exponent, REWARD_EXPONENT_RANGE),
    )
    env = AutoMLParallelEnv(agents=agents, evaluator=evaluator, reward_fn=reward_fn, train_seed=train_seed,
                            info_timings=info_timings, render_mode=render_mode)
    return env.attach(executor=executor, workers=workers, store=store, cache=cache, run_id=run_id, device=device,
                      time_limit=time_limit)


def flops_reward(task: Task) -> FlopsReward:
    """The default reward of a task: its constraint C with MnasNet's w = -0.07 above it."""
    return FlopsReward(task.flops_constraint, DEFAULT_REWARD_EXPONENT)


def _refuse_not_applicable(evaluator: Evaluator, given: Mapping[str, Any]) -> None:
    """One ``UserError`` naming the training arguments given beside an ``Evaluator`` (it decides them)."""
    names = sorted(name for name, value in given.items() if value != TRAIN_DEFAULTS[name])
    if names:
        listed = ", ".join(f"{name}=" for name in names)
        raise UserError(f"{listed} does not apply here: the {type(evaluator).__name__} decides the task, its "
                        "spaces and how a pipeline is scored; leave it out")


def raw_env(**kwargs: Any):
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's order-enforcing wrapper."""
    return OrderEnforcingWrapper(raw_env(**kwargs))
