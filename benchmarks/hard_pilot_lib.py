"""The hard tier's pilot (research scaffolding, not part of the package): its candidate spaces, its jobs
and its analysis, which estimates the hard tier's properties over a whole candidate space from a
uniform sample of its trained pipelines.

The sample is a few hundred of several thousand pipelines, so thresholds 1 and 2 are computed on a
*surrogate*: a model of the validation accuracy fitted on the sample (its held-out Spearman is
reported), predicted for every pipeline, turned into rewards with each pipeline's known FLOPs and
epochs (:func:`~ma2ml.bench.hard.definitions.candidate_reward`), then played as a game
(:func:`~ma2ml.bench.hard.game.game_stats`). Threshold 3 uses the repeated pipelines
(seed noise) against the top-1% spread. Caveats: a surrogate is smoother than real training (no
seed noise, shrunken extremes), so it tends to understate the top-1% spread and may add or remove
equilibria; the numbers are estimates for choosing a space, not the benchmark's statistics.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ma2ml.bench.results import read_raw
from ma2ml.bench.hard.definitions import DEFINITIONS, TableDefinition, space_table
from ma2ml.bench.hard.game import game_stats
from ma2ml.bench.hard.definitions import candidate_reward
from ma2ml.bench.hard.spaces import AugStrengthSpace, CellNetSpace, TrainSpace
from ma2ml.envs.core.reward import batch_rewards
from ma2ml.envs.spaces import AugSpace, HParams, ModuleSpace

REWARD_VARIANTS: dict[str, tuple[float, float]] = {
    "poster": (1.0, 0.0),
    "budget x1, v=-1": (1.0, -1.0),
    "budget x1, v=-3": (1.0, -3.0),
    "budget x2, v=-3": (2.0, -3.0),
    "budget x0.5, v=-3": (0.5, -3.0),
}
"""Reward variants: (B as a multiple of the median training cost of the space, v). C is the median
FLOPs and w = -0.07 in all (the poster's term); "poster" has no training budget."""

# -- the pilot's candidate spaces (``combined`` won and ships: ma2ml.bench.hard.definitions) -------
V0_AUG_OPS = ("AutoContrast", "Rotate", "TranslateY", "Cutout")
"""The digits table's AUG ops (AutoContrast is nearly the identity on digits)."""

CELL_OPS = ("sep_conv_3x3", "dil_conv_3x3", "max_pool_3x3")
"""The cell ops of the ``budget`` and ``resolution`` candidates (the digits table's)."""

def _budget_spaces() -> dict[str, ModuleSpace]:
    return {
        "aug": AugSpace(num_sub_policies=1, ops=V0_AUG_OPS, probs=(0.5,), magnitudes=(5,)),
        "nas": CellNetSpace(num_blocks=1, ops=CELL_OPS, fixed_inputs=((0, 1),), channels=(8, 16, 32),
                            cells_per_stage=(1, 2)),
        "hpo": TrainSpace({"epochs": (2, 4, 8, 16), "lr": (0.03, 0.1, 0.3)}),
    }


def _regularise_spaces() -> dict[str, ModuleSpace]:
    return {
        "aug": AugStrengthSpace(pairs=("Rotate+ShearX", "TranslateX+TranslateY", "Cutout+Rotate"),
                                probs=(0.2, 0.5, 0.8), magnitudes=(2, 5, 8)),
        "nas": CellNetSpace(num_blocks=1, ops=("sep_conv_3x3", "max_pool_3x3"), fixed_inputs=((0, 1),),
                            channels=(8, 16, 32), cells_per_stage=(1, 2)),
        "hpo": TrainSpace({"epochs": (3, 6, 12), "weight_decay": (5e-5, 5e-4, 5e-3)}, base=HParams(lr=0.1)),
    }


def _resolution_spaces() -> dict[str, ModuleSpace]:
    return {
        "aug": AugSpace(num_sub_policies=1, ops=V0_AUG_OPS, probs=(0.5,), magnitudes=(5,)),
        "nas": CellNetSpace(num_blocks=1, ops=CELL_OPS, fixed_inputs=((0, 1),), channels=(8, 16, 24),
                            resolutions=(8, 12, 16)),
        "hpo": TrainSpace({"lr": (0.01, 0.05, 0.25), "batch_size": (32, 128)}, epochs=6),
    }


CANDIDATES: dict[str, TableDefinition] = {c.name: c for c in (
    TableDefinition("budget", "NAS sets the cost of an epoch, HPO the epochs, against a training budget",
                    _budget_spaces),
    TableDefinition("regularise", "augmentation strength against capacity, training length and weight decay",
                    _regularise_spaces),
    TableDefinition("resolution", "input resolution and width under the inference-FLOPs constraint, lr x batch",
                    _resolution_spaces),
    DEFINITIONS["combined"],
)}
"""The pilot's candidates by name."""

def pilot_jobs(candidate: Candidate, n: int, repeat: int, seed: int = 15) -> list[Job]:
    """A uniform sample of ``n`` distinct pipelines (replicate 0), the first ``repeat`` of them again
    with a second seed, each repeat right after its main run (so a partial run has both kinds)."""
    total = candidate.n_pipelines
    if not 1 <= n <= total or not 0 <= repeat <= n:
        raise UserError(f"need 1 <= n <= {total} and 0 <= repeat <= n, got n={n}, repeat={repeat}")
    rng = np.random.default_rng([seed, *candidate.name.encode()])
    sample = rng.choice(total, size=n, replace=False)
    step = n / max(repeat, 1)
    twice = {int(sample[int(k * step)]) for k in range(repeat)}
    return [job for i in sample for job in ((int(i), 0), (int(i), 1))[:1 + (int(i) in twice)]]


def interleave(lists: Sequence[Sequence[Any]]) -> list[Any]:
    """Round-robin merge (so every list advances together)."""
    out: list[Any] = []
    for k in range(max(map(len, lists), default=0)):
        out += [lst[k] for lst in lists if k < len(lst)]
    return out



def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Every result line of a pilot file."""
    return list(read_raw(path))


def features(table: Mapping[str, np.ndarray]) -> np.ndarray:
    """Surrogate features: every token (ordinal) plus log2 FLOPs, log2 epochs and log2 training cost."""
    f, e = table["flops"], table["epochs"]
    return np.column_stack([table["rows"], np.log2(f), np.log2(e), np.log2(f * e)]).astype(np.float64)


def pairwise_onehot(rows: np.ndarray, nvec: np.ndarray) -> np.ndarray:
    """One-hot of every token and every pair of tokens of different fields (for a ridge surrogate)."""
    onehots = [(rows[:, j:j + 1] == np.arange(n)[None, :]).astype(np.float32) for j, n in enumerate(nvec)]
    cols = list(onehots)
    for a, b in itertools.combinations(range(len(onehots)), 2):
        cols.append((onehots[a][:, :, None] * onehots[b][:, None, :]).reshape(len(rows), -1))
    return np.concatenate(cols, axis=1)


def _surrogates() -> dict[str, Any]:
    """Factories of the two surrogates: gradient-boosted trees on ordinal features, and a ridge on
    one-hot tokens and their pairwise products."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV

    return {
        "hgb": lambda: HistGradientBoostingRegressor(max_iter=400, learning_rate=0.05, max_leaf_nodes=15,
                                                     min_samples_leaf=8, l2_regularization=1.0, random_state=0),
        "ridge2": lambda: RidgeCV(alphas=np.logspace(-2, 3, 21)),
    }


def fit_surrogates(x_all: np.ndarray, onehot_all: np.ndarray, idx: np.ndarray, y: np.ndarray,
                   folds: int = 5, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Held-out (k-fold) Spearman and Kendall of each surrogate, and its predictions for every pipeline."""
    from scipy import stats as sps
    from sklearn.model_selection import KFold

    out: dict[str, dict[str, Any]] = {}
    for name, make in _surrogates().items():
        x = x_all if name == "hgb" else onehot_all
        held = np.empty(len(y))
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(idx):
            held[test] = make().fit(x[idx[train]], y[train]).predict(x[idx[test]])
        model = make().fit(x[idx], y)
        out[name] = {"spearman": float(sps.spearmanr(held, y).statistic),
                     "kendall": float(sps.kendalltau(held, y).statistic),
                     "r2": float(1 - ((held - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()),
                     "predict": np.clip(model.predict(x), 0.0, 1.0)}
    return out


def seed_noise(results: list[dict[str, Any]]) -> dict[str, float]:
    """Pooled seed std of the validation accuracy over the pipelines trained twice, overall and
    for the best quarter of them (by their mean)."""
    by = {}
    for r in results:
        by.setdefault(r["index"], {})[r["replicate"]] = r["val_acc"] if r["status"] == "ok" else 0.0
    pairs = np.array([[v[0], v[1]] for v in by.values() if 0 in v and 1 in v])
    if not len(pairs):
        return {"pairs": 0}
    d = pairs[:, 0] - pairs[:, 1]
    mean = pairs.mean(axis=1)
    top = mean >= np.quantile(mean, 0.75)
    return {"pairs": int(len(pairs)), "std": float(np.sqrt(np.mean(d ** 2) / 2)),
            "std_top_quarter": float(np.sqrt(np.mean(d[top] ** 2) / 2)),
            "top_quarter_mean_acc": float(mean[top].mean())}


def analyse_pilot(name: str, paths: str | Path | Sequence[str | Path], starts: int = 1000) -> dict[str, Any]:
    """The pilot statistics of one candidate (see the module docstring) from one or more result
    files of its space (the pilot's, and build shards as they finish); a training found in several
    files counts once. The surrogates are fitted on each pipeline's mean over its replicates."""
    candidate = CANDIDATES[name]
    unique: dict[tuple[int, int], dict[str, Any]] = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        for r in load_results(path):
            unique.setdefault((int(r["index"]), int(r["replicate"])), r)
    results = list(unique.values())
    accs: dict[int, list[float]] = {}
    for r in results:
        accs.setdefault(int(r["index"]), []).append(r["val_acc"] if r["status"] == "ok" else 0.0)
    idx = np.array(sorted(accs))
    y = np.array([np.mean(accs[i]) for i in idx])
    table = space_table(candidate)
    layout = candidate.layout()
    shape = [int(np.prod(s)) for s in layout.sizes]
    x_all = features(table)
    onehot_all = pairwise_onehot(table["rows"], layout.nvec)
    surrogates = fit_surrogates(x_all, onehot_all, idx, y)
    seconds = np.array([r["train_seconds"] for r in results])
    med_f, med_cost = float(np.median(table["flops"])), float(np.median(table["flops"] * table["epochs"]))
    noise = seed_noise(results)
    surrogates["mean"] = {"predict": (surrogates["hgb"]["predict"] + surrogates["ridge2"]["predict"]) / 2}
    # the 2-seed ground truth of a real build: the mean surrogate plus the seed noise of a 2-seed mean
    sigma = noise.get("std_top_quarter", 0.0) / np.sqrt(2)
    rng = np.random.default_rng(0)
    noisy = [np.clip(surrogates["mean"]["predict"] + rng.normal(0, sigma, len(x_all)), 0, 1) for _ in range(3)]
    games: dict[str, dict[str, Any]] = {}
    for variant, (beta, v) in REWARD_VARIANTS.items():
        fn = candidate_reward(candidate, beta, v)
        sample_r = batch_rewards(fn, y, table["flops"][idx], True, table["epochs"][idx])
        top = np.sort(sample_r)[::-1]
        k1 = max(int(np.ceil(0.01 * len(top))), 1)
        for sname, s in surrogates.items():
            g = game_stats(batch_rewards(fn, s["predict"], table["flops"], True, table["epochs"]), shape,
                           starts=starts)
            g["sample_top1_spread"] = float(top[0] - top[k1 - 1])
            games[f"{variant} | {sname}"] = g
        draws = [game_stats(batch_rewards(fn, p, table["flops"], True, table["epochs"]), shape, starts=starts)
                 for p in noisy]
        games[f"{variant} | mean+noise"] = {k: (float(np.mean([d[k] for d in draws]))) for k in draws[0]}
        games[f"{variant} | mean+noise"]["sample_top1_spread"] = float(top[0] - top[k1 - 1])
    return {"candidate": name, "pipelines": candidate.n_pipelines, "tokens": {a: list(s) for a, s in
                                                                              zip(layout.agents, layout.sizes)},
            "trained": len(results), "sampled": int(len(idx)), "seconds_mean": float(seconds.mean()),
            "seconds_median": float(np.median(seconds)),
            "val_acc_max": float(y.max()), "val_acc_median": float(np.median(y)),
            "noise": noise, "median_flops": med_f, "median_train_cost": med_cost,
            "surrogates": {k: {m: v for m, v in s.items() if m != "predict"} for k, s in surrogates.items()
                           if k != "mean"},
            "noise_sigma_2seed_top": float(sigma),
            "games": games}


def format_pilot(s: Mapping[str, Any]) -> str:
    """The pilot statistics of one candidate, as a text block."""
    n = s["noise"]
    lines = [f"== {s['candidate']}: {s['pipelines']:,} pipelines, tokens {s['tokens']}",
             f"trained {s['trained']} ({s['sampled']} pipelines), train seconds mean {s['seconds_mean']:.2f}, "
             f"median {s['seconds_median']:.2f}; val acc max {s['val_acc_max']:.4f}, median {s['val_acc_median']:.4f}",
             f"seed noise (val acc, {n.get('pairs', 0)} pairs): std {n.get('std', float('nan')):.4f}, "
             f"best quarter {n.get('std_top_quarter', float('nan')):.4f} "
             f"(mean acc {n.get('top_quarter_mean_acc', float('nan')):.3f})",
             "surrogates (5-fold held-out): " + "; ".join(
                 f"{k}: Spearman {v['spearman']:.3f}, Kendall {v['kendall']:.3f}, R2 {v['r2']:.3f}"
                 for k, v in s["surrogates"].items()),
             f"{'reward | surrogate':32s} BR->top0.1% (reverse order) BR->top1% BR->opt  equilibria(top1%) "
             f"additive-rank 1-R2add  RS-median top1%-spread(sample)"]
    for key, g in s["games"].items():
        lines.append(f"{key:32s} {g['br_top01']:10.3f} ({g['br_top01_reverse_order']:.3f}) {g['br_top1']:13.3f} "
                     f"{g['br_optimum']:7.3f} "
                     f"{g['equilibria']:6.0f} ({g['equilibria_top1']:3.0f}) {g['additive_best_rank']:12.0f} "
                     f"{g['additive_unexplained']:8.3f} {g['random_search_median']:9.0f} "
                     f"{g['top1_spread']:.4f} ({g['sample_top1_spread']:.4f})")
    return "\n".join(lines)
