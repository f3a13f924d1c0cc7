"""Game statistics of a complete reward table over a joint space (issue 15's thresholds 1 and 2).

The reward of every pipeline, in pipeline order (mixed radix over the agents' concatenated
tokens, last token fastest), is reshaped to a tensor ``R[a_1, ..., a_k]`` with one axis per agent
(that agent's whole joint choice), so an agent's best response is an ``argmax`` along its axis.

* :func:`best_response_runs`: alternating best responses from uniform random starts (each agent
  in turn replaces its choice by the best one given the others'; a tie keeps the current choice);
  stops when a full round changes nothing, or after ``max_rounds`` (a cycle);
* :func:`equilibria`: the agent-wise equilibria (no agent gains by changing its own choice);
* :func:`additive_best`: the best pipeline of the least-squares additive per-agent model (on a
  full factorial table: the argmax of each agent's marginal mean) and its true rank;
* :func:`random_search_median`: evaluations uniform random search needs, in median, to hit the top.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ma2ml.bench.properties import top_count


def ranks(r: np.ndarray) -> np.ndarray:
    """Rank of every pipeline (1 = best; ties share the best rank of their group)."""
    order = np.argsort(-r, kind="stable")
    sorted_r = r[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_r)) + 1]
    group_rank = np.repeat(first + 1, np.diff(np.r_[first, len(r)]))
    out = np.empty(len(r), dtype=np.int64)
    out[order] = group_rank
    return out


def best_response_runs(R: np.ndarray, starts: int = 1000, seed: int = 0, order: Sequence[int] | None = None,
                       max_rounds: int = 50) -> dict[str, Any]:
    """Alternating best responses from ``starts`` uniform random pipelines; where each run ends.

    Returns the end pipelines (flat indices), whether each run converged, and the rounds used.
    """
    shape = R.shape
    k = len(shape)
    order = list(range(k)) if order is None else list(order)
    rng = np.random.default_rng(seed)
    pos = np.stack([rng.integers(0, n, size=starts) for n in shape], axis=1)
    converged = np.zeros(starts, dtype=bool)
    rounds = np.zeros(starts, dtype=np.int64)
    for s in range(starts):
        p = list(pos[s])
        for rnd in range(1, max_rounds + 1):
            changed = False
            for agent in order:
                idx = list(p)
                idx[agent] = slice(None)
                line = R[tuple(idx)]
                best = float(line.max())
                if line[p[agent]] < best:
                    p[agent] = int(np.argmax(line))
                    changed = True
            if not changed:
                converged[s] = True
                rounds[s] = rnd
                break
        else:
            rounds[s] = max_rounds
        pos[s] = p
    ends = np.ravel_multi_index(tuple(pos.T), shape)
    return {"ends": ends, "converged": converged, "rounds": rounds}


def equilibria(R: np.ndarray) -> np.ndarray:
    """Flat indices of the agent-wise equilibria: every agent's choice is a best response."""
    eq = np.ones(R.shape, dtype=bool)
    for axis in range(R.ndim):
        eq &= R >= R.max(axis=axis, keepdims=True)
    return np.flatnonzero(eq.ravel())


def additive_best(R: np.ndarray) -> int:
    """Flat index of the best pipeline of the least-squares additive per-agent model (full factorial:
    each agent's marginal-mean argmax)."""
    idx = []
    for axis in range(R.ndim):
        others = tuple(a for a in range(R.ndim) if a != axis)
        idx.append(int(np.argmax(R.mean(axis=others))))
    return int(np.ravel_multi_index(tuple(idx), R.shape))


def additive_unexplained(R: np.ndarray) -> float:
    """1 - R^2 of the additive per-agent model (full factorial: main effects)."""
    fit = np.full(R.shape, -(R.ndim - 1) * R.mean())
    for axis in range(R.ndim):
        others = tuple(a for a in range(R.ndim) if a != axis)
        fit = fit + np.expand_dims(R.mean(axis=others), others)
    resid = R - fit
    return float((resid ** 2).sum() / ((R - R.mean()) ** 2).sum())


def random_search_median(n: int, k: int, replace: bool = True) -> int:
    """Median evaluations for uniform random search to first draw one of ``k`` target pipelines out
    of ``n`` (with replacement: what a sampling policy does; without: a shuffled enumeration)."""
    if replace:
        return int(math.ceil(math.log(0.5) / math.log1p(-k / n)))
    survive, t = 1.0, 0
    while survive > 0.5:
        survive *= (n - k - t) / (n - t)
        t += 1
    return t


def game_stats(r: np.ndarray, shape: Sequence[int], starts: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Thresholds 1 and 2 of issue 15 on a complete reward vector ``r`` (pipeline order) whose agent
    tensor has ``shape`` (each agent's number of joint choices, in agent order)."""
    r = np.asarray(r, dtype=np.float64)
    R = r.reshape(tuple(shape))
    n = r.size
    rank = ranks(r)
    t01, t1 = top_count(n, 0.001), top_count(n, 0.01)
    runs = best_response_runs(R, starts=starts, seed=seed)
    end_rank = rank[runs["ends"]]
    reverse = rank[best_response_runs(R, starts=starts, seed=seed, order=range(R.ndim - 1, -1, -1))["ends"]]
    eq = equilibria(R)
    add = additive_best(R)
    return {
        "pipelines": n,
        "top01_count": t01, "top1_count": t1,
        "br_top01": float((end_rank <= t01).mean()),
        "br_top1": float((end_rank <= t1).mean()),
        "br_optimum": float((end_rank == 1).mean()),
        "br_top01_reverse_order": float((reverse <= t01).mean()),
        "br_converged": float(runs["converged"].mean()),
        "br_rounds_mean": float(runs["rounds"].mean()),
        "equilibria": int(len(eq)),
        "equilibria_top1": int((rank[eq] <= t1).sum()),
        "equilibria_top01": int((rank[eq] <= t01).sum()),
        "additive_best_rank": int(rank[add]),
        "additive_unexplained": additive_unexplained(R),
        "random_search_median": random_search_median(n, t01),
        "random_search_median_no_replace": random_search_median(n, t01, replace=False),
        "optimum": float(r.max()),
        "top1_spread": float(r.max() - np.sort(r)[::-1][t1 - 1]),
        "top01_threshold": float(np.sort(r)[::-1][t01 - 1]),
    }
