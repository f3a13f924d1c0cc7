"""The benchmark tables' published statistics and their printouts (what ``ma2ml bench info`` shows):
the ``digits`` table's (:func:`table_stats`, :func:`format_stats`) and the coordination tables'
properties 1-4 (:func:`hard_stats`, :func:`format_hard_stats`; the game's analysis is
:mod:`ma2ml.bench.hard.game`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ma2ml.bench.space import BENCH_FLOPS_CONSTRAINT, bench_spaces, joint_nvec, pipeline_tokens
from ma2ml.envs.core.errors import UserError
from ma2ml.envs.core.layout import JointLayout
from ma2ml.envs.core.records import STATUSES
from ma2ml.envs.core.reward import batch_rewards
from ma2ml.envs.spaces import ModuleSpace

if TYPE_CHECKING:
    from ma2ml.bench.table import BenchSpec, Table
    from ma2ml.envs.core.reward import FlopsReward


# -- statistics -----------------------------------------------------------------------------------
def top_count(n: int, fraction: float = 0.01) -> int:
    """Pipelines in the top ``fraction`` of ``n`` (at least one; ``0.07 * 100`` is 7, not 8: the product's
    rounding error is not a pipeline)."""
    return max(int(math.ceil(fraction * n - 1e-9)), 1)


def _agent_choices(spaces: Mapping[str, ModuleSpace], n: int) -> dict[str, np.ndarray]:
    """Each agent's joint choice (its tokens in mixed radix) for every pipeline 0..n-1."""
    layout = JointLayout.of_spaces(spaces)
    rows = layout.all_rows()[:n]
    return {a: np.ravel_multi_index(tuple(rows[:, layout.slices[a]].T), sizes)
            for a, sizes in zip(layout.agents, layout.sizes)}


def unexplained_share(y: np.ndarray, groups: Sequence[np.ndarray]) -> float:
    """1 - R^2 of the least-squares additive model ``y ~ sum_g onehot(group g)`` (with intercept)."""
    cols = [np.ones((len(y), 1))]
    for g in groups:
        levels = np.unique(g)
        cols.append((g[:, None] == levels[None, 1:]).astype(np.float64))
    x = np.concatenate(cols, axis=1)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    return float(resid @ resid / ((y - y.mean()) @ (y - y.mean())))


def describe_searched(spaces: Mapping[str, ModuleSpace], actions: Mapping[str, Any]) -> dict[str, str]:
    """Agent -> its searched choices (the token fields only), one line each."""
    out = {}
    for agent, space in spaces.items():
        values = space.values(space.decode(actions[agent], agent))
        out[agent] = ", ".join(f"{f.name}={values[f.name]}" for f in space.token_fields)
    return out


def table_stats(table: Table, reward_fn: Any | None = None) -> dict[str, Any]:
    """The published statistics of a (complete) table, on replicate 0 unless said otherwise."""
    from scipy import stats as sps

    from ma2ml.envs.core.reward import FlopsReward

    reward_fn = reward_fn or FlopsReward(BENCH_FLOPS_CONSTRAINT)
    spaces = bench_spaces()
    n = table.n_pipelines
    done = table.status[:, 0] >= 0
    if not done.all():
        raise UserError(f"the table is partial: {int((~done).sum())} of {n} pipelines have no entry")
    ok = table.status == 0
    rewards = batch_rewards(reward_fn, np.nan_to_num(table.val_acc), table.flops[:, None], ok)
    r0 = rewards[:, 0]
    order = np.argsort(-r0, kind="stable")
    top1 = top_count(n)
    full3 = table.extra[(table.status[table.extra] >= 0).all(axis=1)]
    noise_reward = rewards[full3].std(axis=1, ddof=1)
    noise_val = np.nan_to_num(table.val_acc[full3]).std(axis=1, ddof=1)
    choices = _agent_choices(spaces, n)
    epochs = table.curve.shape[2]
    fidelity = {
        e + 1: float(sps.spearmanr(batch_rewards(reward_fn, np.nan_to_num(table.curve[:, 0, e]), table.flops,
                                                 np.isfinite(table.curve[:, 0, e])), r0).statistic)
        for e in range(epochs - 1)
    }
    best = int(order[0])
    return {
        "pipelines": n,
        "tokens": {a: [int(v) for v in s.nvec] for a, s in spaces.items()},
        "evaluations": int((table.status >= 0).sum()),
        "statuses": {name: int((table.status == i).sum()) for i, name in enumerate(STATUSES)},
        "train_seconds_total": float(np.nansum(table.train_seconds)),
        "train_seconds_mean": float(np.nanmean(table.train_seconds)),
        "flops_constraint": reward_fn.constraint,
        "reward_exponent": reward_fn.exponent,
        "flops_range": (int(table.flops.min()), int(table.flops.max())),
        "share_over_constraint": float((table.flops > reward_fn.constraint).mean()),
        "val_acc_range": (float(np.nanmin(table.val_acc[:, 0])), float(np.nanmax(table.val_acc[:, 0]))),
        "reward_min": float(r0.min()), "reward_max": float(r0.max()),
        "reward_mean": float(r0.mean()), "reward_std": float(r0.std()),
        "reward_quartiles": tuple(float(q) for q in np.quantile(r0, (0.25, 0.5, 0.75))),
        "optimum": float(r0[best]), "optimum_index": best,
        "optimum_pipeline": describe_searched(spaces, pipeline_tokens(spaces, best)),
        "optimum_test_acc": float(table.test_acc[best, 0]),
        "top1_count": top1, "top1_threshold": float(r0[order[top1 - 1]]),
        "seed_subset": int(len(full3)),
        "seed_noise_reward": float(np.sqrt(np.mean(noise_reward ** 2))),
        "seed_noise_val_acc": float(np.sqrt(np.mean(noise_val ** 2))),
        "noise_share": float(np.mean(noise_reward ** 2) / r0.var()),
        "unexplained_additive": unexplained_share(r0, list(choices.values())),
        "unexplained_additive_per_token": unexplained_share(
            r0, list(np.unravel_index(np.arange(n), [int(v) for v in joint_nvec(spaces)]))),
        "fidelity_spearman": fidelity,
    }


def format_stats(s: Mapping[str, Any], path: str | Path) -> str:
    """The statistics as ``ma2ml bench info`` prints them."""
    q1, q2, q3 = s["reward_quartiles"]
    lines = [
        f"table: {path}",
        f"space: {s['pipelines']:,} pipelines; tokens per agent {s['tokens']}",
        f"entries: {s['evaluations']:,} trainings ({s['seed_subset']} pipelines with 3 seeds); statuses {s['statuses']}",
        f"training: {s['train_seconds_total'] / 3600:.2f} h in all (wall-clock seconds of one-thread evaluations, summed), "
        f"{s['train_seconds_mean']:.2f} s per evaluation",
        f"FLOPs: {s['flops_range'][0]:,}..{s['flops_range'][1]:,} multiply-adds; constraint C = {s['flops_constraint']:,.0f} "
        f"(w = {s['reward_exponent']}), {100 * s['share_over_constraint']:.1f}% of pipelines above it",
        f"val acc: {s['val_acc_range'][0]:.4f}..{s['val_acc_range'][1]:.4f}",
        f"reward: min {s['reward_min']:.4f}, max {s['reward_max']:.4f}, mean {s['reward_mean']:.4f}, "
        f"std {s['reward_std']:.4f}, quartiles {q1:.4f} / {q2:.4f} / {q3:.4f}",
        f"optimum: reward {s['optimum']:.4f} (test acc {s['optimum_test_acc']:.4f}), pipeline {s['optimum_index']}:",
        *(f"  {a}: {d}" for a, d in s["optimum_pipeline"].items()),
        f"top 1% ({s['top1_count']} pipelines): reward >= {s['top1_threshold']:.4f}",
        f"seed noise (3-seed subset, pooled std): reward {s['seed_noise_reward']:.4f}, val acc {s['seed_noise_val_acc']:.4f}; "
        f"{100 * s['noise_share']:.1f}% of the reward variance",
        f"variance left unexplained by an additive per-module model: {100 * s['unexplained_additive']:.1f}% "
        f"(per-token additive model: {100 * s['unexplained_additive_per_token']:.1f}%)",
        "rank correlation (Spearman) of the reward after epoch e with the final reward: "
        + ", ".join(f"e={e}: {v:.3f}" for e, v in s["fidelity_spearman"].items()),
    ]
    return "\n".join(lines)


# -- the coordination tables' properties (``ma2ml bench info --bench hard``) -------------------------
THRESHOLDS = {"br_top01": 0.30, "random_search_median": 300, "noise_to_spread": 0.25}
"""The hard tier's acceptance thresholds (docs/benchmark.md): best responses reach the top 0.1% from at most 30% of starts, random search
needs a median of at least 300 evaluations to the top 0.1%, and the ground truth's noise std at the
top is at most 1/4 of the top-1% spread (the additive model's best must rank outside the top 1%)."""


def hard_stats(path: str | Path | None = None, reward_fn: FlopsReward | None = None, starts: int = 1000,
               seed: int = 0, bench: BenchSpec | None = None) -> dict[str, Any]:
    """Properties 1-4 of a coordination table (``bench``, default: the hard tier's) at ``path``
    (default: its packaged file) under ``reward_fn`` (default: the hard tier's), on
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
    from ma2ml.bench.hard.game import game_stats
    from ma2ml.bench.hard.tables import HARD_BENCH, hard_reward
    from ma2ml.bench.table import TableEvaluator

    bench = bench or HARD_BENCH
    reward_fn = reward_fn or hard_reward()
    evaluator = TableEvaluator(path if path is not None else bench.path, replicate=0, bench=bench)
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
        "name": bench.name,
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
        f"table: {path} ({s['name']})",
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
        f"every pipeline with two seeds: {s['complete']}); no surrogate",
    ]
    return "\n".join(lines)
