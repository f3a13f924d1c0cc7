"""A :class:`Comparison`: learners × seeds on one registered env, each an :class:`~ma2ml.experiment.Experiment`.

    from ma2ml.comparison import Comparison
    result = Comparison(env="ma2ml/AutoML-DigitsBench-v0", learners=["ma2ml", "random"], budget=300,
                        batch_size=10, out="runs/compare").run()

Every run is an experiment in ``OUT/runs/<learner>/seed<k>/`` (an ``ma2ml search`` run folder); a
finished run is not rerun, an unfinished one resumes where it stopped, so an interrupted
comparison resumes. Every learner runs the same seeds (paired); ``jobs`` spreads the learner ×
seed runs over worker processes, each with one torch thread. An interrupt stops every run at
once: the run workers ignore SIGINT and the parent kills them (a run folder survives a kill at
any moment).

The comparison trusts no log. A run's numbers (rewards, pipelines, batches, training seconds)
come from its evaluation store and its checkpoint's batch starts (:meth:`Experiment.read`), never
from ``results.jsonl`` or ``timings.jsonl``: a truncated, forged or reordered log changes nothing.
A log that differs from the store is rewritten from it, and one line says which file and where it
differed. A run is finished when its ``best.json`` and its checkpoint both report the full budget
and its store holds every one of those evaluations (:meth:`Experiment.finished`). Any other run is
resumed: a store short of the budget gets its missing evaluations, and a store short of what the
run's checkpoint recorded is refused with one ``RunFolderError`` naming it.

What the env's evaluator declares about its rewards (:meth:`Evaluator.reference
<ma2ml.envs.core.evaluator.Evaluator.reference>`, :meth:`Evaluator.truth
<ma2ml.envs.core.evaluator.Evaluator.truth>`: the benchmark tables declare both) sets the
default seed count (:data:`TRUTH_SEEDS` where the ground truth is known: cheap runs and small
differences; :data:`OTHER_SEEDS` elsewhere) and what the report holds. ``OUT`` gets
``summary.md``, the figures, ``per_run.json``, ``marl_eval.json`` and ``wall_seconds.json``
(:mod:`ma2ml.report`): regret at every ``budgets`` point and the full budget, and, where declared,
simple regret to the optimum, evaluations to the top 1% and the true regret of each run's
recommended pipeline on the seed-averaged ground truth.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ma2ml.envs import make_parallel
from ma2ml.envs.core.errors import UserError
from ma2ml.experiment import (MAX_SEED, Experiment, check_env_args, check_run_args, check_seed, normalized,
                              runtime_args)
from ma2ml.runfolder import check_writable_folder, folder_lock, make_folder

if TYPE_CHECKING:
    from ma2ml.report import Comparison as Report, Run, Tokens, Truth

DEFAULT_ENV = "ma2ml/AutoML-DigitsBench-v0"
MAX_SEEDS = 10_000
"""Most seeds per learner in one comparison."""
MAX_JOBS = 256
"""Most parallel processes."""
TRUTH_SEEDS = 30
"""Default seeds per learner on envs whose evaluator declares its ground truth (the benchmark tables)."""
OTHER_SEEDS = 10
"""Default seeds per learner elsewhere (real training)."""


@dataclass(frozen=True)
class Known:
    """What an env's evaluator declares about its rewards (all None for real training)."""

    optimum: float | None = None
    """The optimal reward."""
    top1: float | None = None
    """The top-1% reward threshold."""
    truth: Truth | None = None
    """Pipelines -> their ground-truth rewards."""
    true_optimum: float | None = None
    """The best ground-truth reward."""
    noisy: bool = False
    """Evaluating a pipeline again can answer differently (``Evaluator.seed_noise``)."""

    @classmethod
    def of(cls, env: Any) -> Known:
        """What ``env``'s evaluator declares (:func:`known_reference`, :func:`known_truth`, its seed noise)."""
        return cls(*known_reference(env), *known_truth(env), bool(env.evaluator.seed_noise()))


def known_reference(env: Any) -> tuple[float | None, float | None]:
    """(optimum, top-1% threshold) where the env's evaluator declares them (``Evaluator.reference``)."""
    reference = env.evaluator.reference(env.reward_fn)
    return reference if reference is not None else (None, None)


def known_truth(env: Any) -> tuple[Truth | None, float | None]:
    """(pipelines -> ground-truth rewards, the best ground truth) where the env's evaluator declares its
    ground truth (``Evaluator.truth``: the benchmark table's seed-averaged rewards)."""
    from ma2ml.envs.core.layout import JointLayout

    truth = env.evaluator.truth(env.reward_fn)
    if truth is None:
        return None, None
    values = np.asarray(truth, dtype=float)
    layout = JointLayout.of_spaces(env.evaluator.spaces)

    def score(tokens: Sequence[Tokens]) -> np.ndarray:
        return values[layout.index(layout.join_rows(tokens))]

    return score, float(values.max())


def _stderr(line: str) -> None:
    print(f"ma2ml compare: {line}", file=sys.stderr)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Learners × seeds on one env, written to :attr:`out` (see the module docstring). Every field is
    checked at construction (one ``UserError``, its message naming the ``ma2ml compare`` option);
    :meth:`run` runs what is not finished and writes the report."""

    out: str | Path
    """The comparison folder (runs in ``runs/<learner>/seed<k>/``, the report beside them)."""
    learners: Sequence[str]
    """Learner names (``ma2ml list``) or ``"module:Class"``; at least one."""
    env: str = DEFAULT_ENV
    """Registered PettingZoo id."""
    env_args: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of every run's env (JSON values; never ``store``/``run_id``)."""
    learner_args: Mapping[str, Any] = field(default_factory=dict)
    """Config fields given to every learner (JSON values), e.g. ``{"race_seeds": 8}``; each learner must have
    them (the base fields of :class:`ma2ml.agents.base.LearnerConfig` every learner has)."""
    seeds: int | None = None
    """Seeds per learner, 1..:data:`MAX_SEEDS`; None: :data:`TRUTH_SEEDS` where the evaluator declares its
    ground truth, else :data:`OTHER_SEEDS`."""
    first_seed: int = 0
    """The first seed; the seeds are ``first_seed, first_seed + 1, ...``."""
    budget: int = 300
    """Evaluations per run."""
    batch_size: int = 10
    """Evaluations per batch."""
    top_k: int = 10
    """k of the top-k figure, 1..``budget``."""
    budgets: Sequence[int] | None = None
    """Budget points of the anytime tables (those below ``budget`` are kept, ``budget`` is added);
    None: :data:`ma2ml.report.ANYTIME_BUDGETS`."""
    jobs: int = 1
    """Runs in parallel worker processes, 1..:data:`MAX_JOBS`."""
    no_repeat: bool | None = None
    """The learners' no-repeat protocol (:attr:`Experiment.no_repeat`)."""
    executor: str | None = None
    """Where each run's evaluations run (:attr:`Experiment.executor`)."""
    workers: int | None = None
    """Processes of each run's ``"process"`` executor (:attr:`Experiment.workers`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "learners", [name.strip() for name in self.learners if name.strip()])
        if not self.learners:
            raise UserError("--learners needs at least one learner name")
        for learner in self.learners:
            check_run_args(learner, self.budget, self.batch_size)
        for name, top in (("seeds", MAX_SEEDS), ("jobs", MAX_JOBS), ("top_k", self.budget)):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= top:
                raise UserError(f"--{name.replace('_', '-')} must be an integer in 1..{top:,}, got {value}")
        if self.budgets is not None and (not self.budgets or min(self.budgets) < 1):
            raise UserError(f"--budgets must be positive integers (evaluations), got {list(self.budgets)}")
        check_seed(self.first_seed, "--first-seed")
        object.__setattr__(self, "env_args", dict(self.env_args))
        object.__setattr__(self, "learner_args", dict(self.learner_args))
        from ma2ml.learners import learner_config

        for learner in self.learners:
            learner_config(learner, **self.learner_args)  # every learner takes them (one clear error if not)
        normalized(self.learner_args, "--learner-arg")
        check_env_args(self.env_args)  # before the env is made: store= would create its file
        runtime_args(self.env_args, self.executor, self.workers)
        normalized(self.env_args, "--env-arg")
        object.__setattr__(self, "out", check_writable_folder(self.out))

    def experiment(self, learner: str, seed: int) -> Experiment:
        """The run of ``learner`` with ``seed``, in ``out/runs/<learner>/seed<seed>``."""
        return Experiment(out=Path(self.out) / "runs" / learner / f"seed{seed}", env=self.env,
                          env_args=self.env_args, learner=learner, learner_args=self.learner_args,
                          budget=self.budget, batch_size=self.batch_size,
                          seed=seed, no_repeat=self.no_repeat, executor=self.executor, workers=self.workers)

    def run(self, progress: bool = True, warn: Callable[[str], None] = _stderr) -> Report:
        """Run every unfinished learner × seed run (resuming each), then write the report from the runs'
        stores; returns the report's :class:`ma2ml.report.Comparison`. ``warn`` hears one line for each
        log rewritten from its store. A folder in which nothing ran is removed again on failure."""
        out = Path(self.out)
        env = make_parallel(self.env, **self.env_args)  # its reward reads the runs' stored records
        try:
            known = Known.of(env)
            n_seeds = self.seeds if self.seeds is not None else TRUTH_SEEDS if known.truth is not None else OTHER_SEEDS
            if self.first_seed + n_seeds - 1 > MAX_SEED:
                raise UserError(f"--first-seed + --seeds - 1 must be at most {MAX_SEED}, "
                                f"got {self.first_seed + n_seeds - 1}")
            runs = [self.experiment(learner, seed) for learner in self.learners
                    for seed in range(self.first_seed, self.first_seed + n_seeds)]
            created = make_folder(out)
            try:
                with folder_lock(out, "comparison folder"):
                    return self._run(runs, env, known, progress, warn)
            except BaseException:
                if created and not (out / "runs").exists():  # nothing ran: leave nothing behind
                    shutil.rmtree(out, ignore_errors=True)
                raise
        finally:
            env.close()

    def _run(self, runs: list[Experiment], env: Any, known: Known, progress: bool,
             warn: Callable[[str], None]) -> Report:
        from tqdm import tqdm

        from ma2ml.report import ANYTIME_BUDGETS, write_report
        from ma2ml.runtime.pool import worker_initializer

        todo = [run for run in runs if not run.finished()]
        bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="runs", unit="run", disable=not progress)
        pool = ProcessPoolExecutor(max_workers=self.jobs, initializer=worker_initializer, initargs=(os.getpid(),))
        try:
            for future in as_completed([pool.submit(_run_one, run) for run in todo]):
                learner, seed = future.result()
                bar.update(1)
                bar.set_postfix(last=f"{learner}/seed{seed}")
        except BaseException:  # an interrupt or a failed run: stop the others now (their run folders resume)
            _stop(pool)
            raise
        finally:
            bar.close()
        pool.shutdown()

        def mended(problem: str) -> None:
            warn(f"{problem}; rebuilt it from the run's store (the comparison reads the store)")

        read: list[Run] = [run.read(env, known.truth, mended) for run in runs]
        return write_report(read, Path(self.out), self.env, known.optimum, known.top1, k=self.top_k,
                            budgets=list(self.budgets or ANYTIME_BUDGETS), true_optimum=known.true_optimum,
                            noisy=known.noisy, protocol=self.protocol() if known.noisy else "")

    def protocol(self) -> str:
        """The evaluation protocol in one sentence (``summary.md`` under seed noise; ``run.json`` records it per
        run)."""
        repeats = ("the no-repeat protocol (every proposal of a learner a new pipeline; the re-evaluations of "
                   "reevaluate_share and race_seeds excepted)" if self.no_repeat in (None, True) else
                   "repeats allowed: evaluating a pipeline again is charged one evaluation and answers with another "
                   "stored training, without replacement per pipeline until its trainings run out")
        settings = ", ".join(f"{k}={v}" for k, v in sorted(self.learner_args.items())) or "none (the defaults)"
        return f"Protocol: {repeats}. Settings given to every learner: {settings}."


def _run_one(experiment: Experiment) -> tuple[str, int]:
    """One run in a worker process (the CLI's thread policy: one torch thread)."""
    from ma2ml.envs.core.threads import set_process_threads

    set_process_threads()
    experiment.run(progress=False)
    return experiment.learner, experiment.seed


def _stop(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's workers (they ignore SIGINT: the parent stops them) and drop its queued runs.
    A run killed at any moment resumes from its store and checkpoint."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)
