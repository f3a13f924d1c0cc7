"""The benchmark table's published statistics (:func:`table_stats`) and their printout
(:func:`format_stats`, what ``ma2ml bench info`` shows).
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
    from ma2ml.bench.table import Table


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
