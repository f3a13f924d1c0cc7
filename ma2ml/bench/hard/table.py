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
stored replicate of a pipeline. Where the seeds went (:mod:`~ma2ml.bench.hard.build`):
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

from ma2ml.bench.hard.definitions import (BUILD_SEEDS, DEFINITIONS, HARD_DEFINITION, TOP1_SEEDS, TOP_SEEDS, space_epochs,
                                         space_table)
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
:func:`~ma2ml.bench.hard.reward.candidate_reward` at :data:`HARD_REWARD` (a test checks)."""


def hard_reward() -> FlopsReward:
    """The hard tier's reward function (the env's default)."""
    return FlopsReward(constraint=HARD_REWARD_ARGS["flops_constraint"], exponent=HARD_REWARD_ARGS["reward_exponent"],
                       budget=HARD_REWARD_ARGS["training_budget"], budget_exponent=HARD_REWARD_ARGS["budget_exponent"])


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


def compact_build(build: str | Path = HARD_BUILD_DIR, out: str | Path = HARD_TABLE_PATH) -> Path:
    """Write the hard table (compressed ``.npz``) from the build's shards; pipelines not yet
    trained stay NaN (the table is then partial, and the env refuses them by name).

    ``meta``: the fingerprint, statuses, entries, C, the build platform (``None`` when several),
    ``seeds_histogram`` (pipelines by stored seeds) and ``complete`` (every pipeline has its
    :data:`~ma2ml.bench.hard.build.BUILD_SEEDS` base seeds).
    """
    from ma2ml.bench.build import check_table_path
    from ma2ml.bench.hard.build import read_build

    path = check_table_path(out, None)
    lines = read_build(CANDIDATE, build)
    if not lines:
        raise UserError(f"{build} holds no hard-tier results; run benchmarks/hard_build.py first")
    n, reps, epochs = CANDIDATE.n_pipelines, HARD_BENCH.replicates, HARD_EPOCHS
    curve = np.full((n, reps, epochs), np.nan, dtype=np.float32)
    val = np.full((n, reps), np.nan)
    test = np.full((n, reps), np.nan)
    seconds = np.full((n, reps), np.nan, dtype=np.float32)
    seed = np.full((n, reps), -1, dtype=np.int64)
    status = np.full((n, reps), -1, dtype=np.int8)
    flops = np.asarray(space_table(CANDIDATE)["flops"], dtype=np.int64)
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
    meta = {**CANDIDATE.fingerprint(), "statuses": list(STATUSES), "entries": int(stored.sum()),
            "flops_constraint": HARD_BENCH.flops_constraint,
            "build_platform": platforms[0] if len(platforms) == 1 else None,
            "seeds_histogram": {str(s): int((count == s).sum()) for s in range(reps + 1) if (count == s).any()},
            "complete": bool((count >= BUILD_SEEDS).all())}
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: np.savez_compressed(
        fh, meta=np.array(json.dumps(meta)), curve=curve, val_acc=val, test_acc=test, train_seconds=seconds,
        seed=seed, status=status, flops=flops, params=params, extra=extra))


# -- statistics (``ma2ml bench info --bench hard``) -----------------------------------------------
THRESHOLDS = {"br_top01": 0.30, "random_search_median": 300, "noise_to_spread": 0.25}
"""Issue 15's thresholds: best responses reach the top 0.1% from at most 30% of starts, random search
needs a median of at least 300 evaluations to the top 0.1%, and the ground truth's noise std at the
top is at most 1/4 of the top-1% spread (the additive model's best must rank outside the top 1%)."""


def hard_stats(path: str | Path | None = None, reward_fn: FlopsReward | None = None, starts: int = 1000,
               seed: int = 0) -> dict[str, Any]:
    """Issue 15's properties 1-4 of the hard table at ``path`` (default: the packaged one) under
    ``reward_fn`` (default: the tier's), on
    the seed-averaged ground truth (every stored replicate of a pipeline averaged).

    * the game (:func:`~ma2ml.bench.hard.game.game_stats`): alternating best responses from
      ``starts`` uniform random starts, agent-wise equilibria, the additive model's best, random
      search's median evaluations to the top 0.1%;
    * the truth's noise at the top: the pooled per-seed std of the top-1% pipelines with at least
      two seeds, divided by the square root of each top-1% pipeline's own seed count (the standard
      error of its mean, root-mean-squared), against the top-1% spread (best minus the top-1%
      threshold);
    * provenance: how many pipelines were really trained, with how many seeds.
    """
    from ma2ml.bench.hard.game import game_stats, top_count
    from ma2ml.bench.table import TableEvaluator

    reward_fn = reward_fn or hard_reward()
    evaluator = TableEvaluator(path if path is not None else HARD_BENCH.path, replicate=0, bench=HARD_BENCH)
    table = evaluator.table
    truth = evaluator.truth(reward_fn)
    layout = evaluator.layout
    shape = [int(np.prod(sizes)) for sizes in layout.sizes]
    game = game_stats(truth, shape, starts=starts, seed=seed)
    # per-seed rewards, for the noise at the top
    ok = table.status == 0
    rewards = evaluator.seed_rewards(reward_fn)
    seeds = table.replicates
    top1 = np.argsort(-truth, kind="stable")[:top_count(len(truth), 0.01)]
    multi = top1[seeds[top1] >= 2]
    dev = rewards[multi] - np.nanmean(rewards[multi], axis=1, keepdims=True)
    dof = int((seeds[multi] - 1).sum())
    seed_sd = float(np.sqrt(np.nansum(dev ** 2) / dof)) if dof else float("nan")
    noise = float(np.sqrt(np.mean(seed_sd ** 2 / seeds[top1])))
    best = int(np.argmax(truth))
    main = np.where(table.status[:, 0] >= 0, rewards[:, 0], -np.inf)
    main_best = np.flatnonzero(main == main.max())  # replicate 0's best (ties: all of them)
    return {
        **game,
        "br_starts": starts,
        "complete": table.meta.get("complete"),
        "agent_choices": dict(zip(layout.agents, shape)),
        "entries": int((table.status >= 0).sum()),
        "failed": int(((table.status >= 0) & ~ok).sum()),
        "seeds_histogram": {int(s): int((seeds == s).sum()) for s in np.unique(seeds)},
        "trained_share": float((seeds >= 1).mean()),
        "train_hours": float(np.nansum(table.train_seconds) / 3600),
        "top1_seeds_min": int(seeds[top1].min()), "top1_seeds_max": int(seeds[top1].max()),
        "top1_seeds_mean": float(seeds[top1].mean()),
        "seed_sd_top1": seed_sd, "truth_noise_top": noise,
        "replicate0_best_true_regret": float(np.mean(truth[best] - truth[main_best])),
        "replicate0_best_count": int(len(main_best)),
        "noise_to_spread": noise / game["top1_spread"] if game["top1_spread"] > 0 else float("inf"),
        "optimum_index": best,
        "optimum_pipeline": evaluator.pipeline_json(layout.tokens_at(best)),
        "optimum_seeds": int(seeds[best]),
        "reward": {"C": reward_fn.constraint, "w": reward_fn.exponent, "B": reward_fn.budget,
                   "v": reward_fn.budget_exponent},
    }


def format_hard_stats(s: dict[str, Any], path: str | Path) -> str:
    """Properties 1-4 as ``ma2ml bench info --bench hard`` prints them, each against its threshold."""
    def verdict(ok: bool) -> str:
        return "meets the threshold" if ok else "MISSES the threshold"

    r = s["reward"]
    hist = ", ".join(f"{n:,} with {k}" for k, n in sorted(s["seeds_histogram"].items()))
    lines = [
        f"table: {path} (hard tier, {TASK_NAME})",
        f"space: {s['pipelines']:,} pipelines; choices per agent {s['agent_choices']}",
        f"reward: R = acc * (FLOPs/C)^w above C * (FLOPs x epochs / B)^v above B; C = {r['C']:,.0f}, "
        f"w = {r['w']}, B = {r['B']:,.0f}, v = {r['v']}",
        f"optimum (seed-averaged truth): {s['optimum']:.4f}, pipeline {s['optimum_index']} "
        f"({s['optimum_seeds']} seeds): {s['optimum_pipeline']}",
        "",
        "1. coordination",
        f"   alternating best responses from {s['br_starts']:,} uniform random starts reach the top 0.1% "
        f"({s['top01_count']} pipelines) in {100 * s['br_top01']:.1f}% of starts "
        f"(threshold <= {100 * THRESHOLDS['br_top01']:.0f}%: {verdict(s['br_top01'] <= THRESHOLDS['br_top01'])}); "
        f"the top 1% in {100 * s['br_top1']:.1f}%, the optimum in {100 * s['br_optimum']:.1f}%; "
        f"reverse agent order: top 0.1% in {100 * s['br_top01_reverse_order']:.1f}%",
        f"   the least-squares additive per-module model's best pipeline ranks {s['additive_best_rank']:,} "
        f"(top 1% = rank <= {s['top1_count']}: {verdict(s['additive_best_rank'] > s['top1_count'])}); "
        f"the additive model leaves {100 * s['additive_unexplained']:.1f}% of the reward variance unexplained",
        f"   agent-wise equilibria: {s['equilibria']} ({s['equilibria_top1']} in the top 1%, "
        f"{s['equilibria_top01']} in the top 0.1%)",
        "2. headroom",
        f"   uniform random search needs a median of {s['random_search_median']:,} evaluations to reach the "
        f"top 0.1% ({s['random_search_median_no_replace']:,} without repeats) "
        f"(threshold >= {THRESHOLDS['random_search_median']}: "
        f"{verdict(s['random_search_median'] >= THRESHOLDS['random_search_median'])})",
        "3. resolution",
        f"   ground truth: every stored seed of a pipeline averaged; seeds per pipeline: {hist}; "
        f"the top 1% has {s['top1_seeds_min']}..{s['top1_seeds_max']} seeds (mean {s['top1_seeds_mean']:.1f})",
        f"   per-seed reward std at the top {s['seed_sd_top1']:.4f}; the truth's noise std at the top "
        f"{s['truth_noise_top']:.4f} vs the top-1% spread {s['top1_spread']:.4f}: ratio {s['noise_to_spread']:.2f} "
        f"(threshold <= {THRESHOLDS['noise_to_spread']}: {verdict(s['noise_to_spread'] <= THRESHOLDS['noise_to_spread'])})",
        f"   the best pipelines of replicate 0 alone (what table_seed=0 answers; {s['replicate0_best_count']} tied) "
        f"have a mean true regret of {s['replicate0_best_true_regret']:.4f}: about the floor of a search scored on "
        "the truth with deterministic rewards",
        "4. provenance",
        f"   exhaustive: {100 * s['trained_share']:.1f}% of the pipelines really trained by this project's evaluator "
        f"({s['entries']:,} trainings, {s['failed']} failed, {s['train_hours']:.1f} h of one CPU thread; "
        f"base build complete: {s['complete']}); no surrogate",
    ]
    return "\n".join(lines)
