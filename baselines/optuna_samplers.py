"""Optuna's samplers as ask/tell learners: TPE (``tpe``) and the Gaussian-process sampler (``gp``).

Each learner drives one in-memory Optuna study (``direction="maximize"``) through Optuna's
ask-and-tell interface (``study.ask()`` / ``study.tell()``). Every joint token is one
categorical parameter, ``trial.suggest_categorical("<agent>.<k>", [0, ..., n_k - 1])``: a
token indexes a module's choices (an augmentation, an operation, a value from a list), and a
categorical parameter assumes nothing about neighbouring indexes behaving alike. The sampler
is seeded with the learner's seed, so a run on CPU is deterministic. The task descriptor S is
constant within an env and is not used. Optuna is an optional extra
(``pip install -e ".[optuna]"``), imported when a learner is built.

**Batches.** ``ask(n)`` opens ``n`` trials at once; they stay RUNNING until their rewards are
told. TPE's constant liar counts running trials among the bad ones when it proposes the
next, so a batch spreads out instead of proposing one point ``n`` times; the GP sampler
conditions on running trials itself.

**No repeats** (``handles_repeats = True``; the learner keeps the protocol of
:mod:`ma2ml.agents.base` itself). Under ``no_repeat``, a proposal that repeats a pipeline
already told is completed at once with the reward told before (the learner keeps every told
reward; nothing is evaluated and the budget is not charged) and the sampler is asked again;
a proposal equal to a pipeline asked but not told, or to one earlier in the same batch, is
completed as FAIL (the samplers ignore failed trials) and the sampler is asked again. After
:data:`~ma2ml.agents.base.RESAMPLE_ROUNDS` such rounds, a uniform unseen pipeline from the
learner's generator is enqueued as the trial instead. Once every pipeline has been seen the
sampler's proposal is taken as it is. Pipelines told without being asked get a trial of
their own (enqueued), so the study holds every evaluation.

**Checkpoints replay** (as the SB3 learners do): ``state_dict()`` keeps the log of the
learner's study operations — each trial opened (the sampler's proposal or an enqueued
pipeline) and each trial completed (with its reward, or as FAIL); ``load_state_dict()`` on a
fresh learner replays them into a new study with the same seed, checking each proposal,
which rebuilds the sampler's state exactly. Replaying costs about the sampler time of the
run so far. The log is plain lists, numbers and strings (``torch.load(weights_only=True)``).

**Logs.** Optuna logs every created study and completed trial at INFO on the ``optuna``
logger. The learner raises that logger to WARNING only while it calls Optuna and restores
its level afterwards, so Optuna's verbosity stays what the user set for their own studies.
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.fields import Annotated, Range
from ma2ml.agents.base import RESAMPLE_ROUNDS, Learner, LearnerConfig, quiet_logger
from ma2ml.envs.core.protocol import AutoMLEnv
from ma2ml.envs.core.records import EvalRecord

INSTALL_HINT = 'pip install -e ".[optuna]"'
"""How to install the optional Optuna dependency (in a checkout of this repository)."""


def import_optuna(learner: str) -> ModuleType:
    """The ``optuna`` module, or one ``ValueError`` saying how to install it."""
    try:
        import optuna
    except ImportError as exc:
        raise UserError(f"learner {learner} needs Optuna, an optional extra ({exc}): {INSTALL_HINT}") from None
    return optuna


@dataclass
class TPEConfig(LearnerConfig):
    """Optuna's Tree-structured Parzen Estimator (Bergstra et al. 2011; Watanabe 2023).

    Defaults are Optuna 5's own and the literature's, not tuned here: ``n_startup_trials`` and
    ``n_ei_candidates`` are Optuna's defaults; ``multivariate=True`` models the tokens jointly
    (Falkner et al. 2018, BOHB), which suits a space whose agents' best choices depend on each
    other (Optuna 5's default for one objective; Optuna 3.6 defaulted to independent tokens);
    ``constant_liar=True`` is what keeps a batch of running trials apart (Optuna 5's default).
    All four are passed explicitly, so a run is the same TPE whatever Optuna's defaults.
    """

    n_startup_trials: Annotated[int, Range(0, 100_000)] = 10
    """Trials drawn uniformly at random before TPE models the completed ones."""
    n_ei_candidates: Annotated[int, Range(1, 100_000)] = 24
    """Candidates drawn from the good-trials density; the one with the best density ratio is proposed."""
    multivariate: bool = True
    """One joint density over all tokens (True) or one density per token (False)."""
    constant_liar: bool = True
    """Count running (asked, not told) trials among the bad ones, so a batch spreads out."""


@dataclass
class GPConfig(LearnerConfig):
    """Optuna's Gaussian-process Bayesian optimisation (``optuna.samplers.GPSampler``).

    Optuna's defaults: a Matérn-5/2 GP (categorical tokens by a Hamming-distance kernel) fitted
    to the completed trials, log expected improvement maximised over the space, running trials
    conditioned on (Optuna 5; the GP sampler of Optuna 3.6 ignores them, so there a batch
    repeats one point until the learner's fallback fills it with uniform pipelines).
    Not registered by name: a run of budget 300 takes minutes where TPE takes a second; use
    ``ma2ml.baselines.optuna_samplers:GP``.
    """

    n_startup_trials: Annotated[int, Range(0, 100_000)] = 10
    """Trials drawn uniformly at random before the GP is fitted."""
    deterministic_objective: bool = False
    """Fit the GP without observation noise (True suits a fixed table; trainings are noisy)."""


class OptunaLearner(Learner):
    """An Optuna sampler behind ask/tell (see the module docstring); subclasses build the sampler."""

    handles_repeats = True

    def __init__(self, env: AutoMLEnv, config: LearnerConfig | None = None, seed: int = 0) -> None:
        super().__init__(env, config, seed)
        optuna = import_optuna(type(self).__name__)
        self._fail = optuna.trial.TrialState.FAIL
        self.names = [f"{a}.{k}" for a in self.agents for k in range(len(self.nvec[a]))]
        """The Optuna parameter of each joint token."""
        self.choices = [list(range(int(n))) for n in self.joint_nvec]
        with quiet_logger("optuna"):
            self.study = optuna.create_study(direction="maximize", sampler=self.make_sampler(optuna))
        self._running: dict[int, np.ndarray] = {}
        """Trial number -> its pipeline, for trials asked and not told (in ask order)."""
        self._known: dict[bytes, float] = {}
        """Row key -> the reward last told for that pipeline."""
        self._log: list[tuple[Any, ...]] = []

    @abstractmethod
    def make_sampler(self, optuna: ModuleType) -> Any:
        """The seeded Optuna sampler of this learner."""

    # -- the study operations (each one logged, for the replay) --------------------------------
    def _open(self, row: np.ndarray | None = None) -> tuple[int, np.ndarray]:
        """A new trial: the sampler's proposal, or ``row`` enqueued; returns its number and pipeline."""
        if row is not None:
            self.study.enqueue_trial(dict(zip(self.names, np.asarray(row).tolist(), strict=True)))
        trial = self.study.ask()
        got = np.array([trial.suggest_categorical(name, choices)
                        for name, choices in zip(self.names, self.choices, strict=True)], dtype=np.int64)
        self._running[trial.number] = got
        self._log.append(("ask" if row is None else "enqueue", got.tolist()))
        return trial.number, got

    def _close(self, number: int, reward: float | None) -> None:
        """Complete trial ``number`` with ``reward``, or as FAIL (None)."""
        row = self._running.pop(number)
        if reward is None:
            self.study.tell(number, state=self._fail)
        else:
            self.study.tell(number, reward)
            self._known[self.row_key(row)] = reward
        self._log.append(("tell", number, reward))

    # -- ask / tell ----------------------------------------------------------------------------
    def _ask(self, n: int) -> list[dict[str, np.ndarray]]:
        rows: list[np.ndarray] = []
        taken: set[bytes] = set()
        with quiet_logger("optuna"):
            for _ in range(n):
                row = self._propose(taken)
                taken.add(self.row_key(row))
                rows.append(row)
        return self.split(np.stack(rows))

    def _propose(self, taken: set[bytes]) -> np.ndarray:
        """One trial's pipeline, a new one under ``no_repeat`` (the module docstring's rounds)."""
        for _ in range(RESAMPLE_ROUNDS):
            number, row = self._open()
            key = self.row_key(row)
            if not self.no_repeat or (key not in taken and not self.is_seen(row)) or not self.unseen_left(taken):
                return row
            self._close(number, None if key in taken else self._known.get(key))
        return self._open(self.unseen_rows(1, taken)[0])[1]

    def _tell(self, joint: np.ndarray, rewards: np.ndarray, records: Sequence[EvalRecord] | None) -> None:
        with quiet_logger("optuna"):
            for row, reward in zip(joint, rewards, strict=True):
                key = self.row_key(row)
                number = next((m for m, r in self._running.items() if self.row_key(r) == key), None)
                if number is None:  # told without being asked
                    number, _ = self._open(row)
                self._close(number, float(reward))

    # -- checkpoints by replay -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log": list(self._log)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_checkpoint(state)
        if self._log:
            raise UserError(f"load a {type(self).__name__} checkpoint into a fresh learner (this one has already "
                             "asked or been told)")
        with quiet_logger("optuna"):
            for kind, *values in state["log"]:
                if kind == "tell":
                    number, reward = values
                    self._close(int(number), None if reward is None else float(reward))
                    continue
                want = np.asarray(values[0], dtype=np.int64)
                _, got = self._open(want if kind == "enqueue" else None)
                if not np.array_equal(got, want):
                    raise RuntimeError(f"replaying the {type(self).__name__} checkpoint gave the proposal "
                                       f"{got.tolist()} where the run had {want.tolist()}; it was written with "
                                       "another seed or Optuna version")
        super().load_state_dict(state)


class TPE(OptunaLearner):
    """Optuna's TPE sampler behind ask/tell (config: :class:`TPEConfig`)."""

    config_class = TPEConfig

    def make_sampler(self, optuna: ModuleType) -> Any:
        c = self.config
        return optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=c.n_startup_trials,
                                          n_ei_candidates=c.n_ei_candidates, multivariate=c.multivariate,
                                          constant_liar=c.constant_liar)


class GP(OptunaLearner):
    """Optuna's Gaussian-process sampler behind ask/tell (config: :class:`GPConfig`; not registered: slow)."""

    config_class = GPConfig

    def make_sampler(self, optuna: ModuleType) -> Any:
        c = self.config
        return optuna.samplers.GPSampler(seed=self.seed, n_startup_trials=c.n_startup_trials,
                                         deterministic_objective=c.deterministic_objective)
