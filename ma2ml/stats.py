"""The statistics of a comparison over seeds, as rliable defines them (Agarwal et al. 2021): the
interquartile mean, percentile bootstrap intervals (with one task, rliable's stratified
bootstrap resamples the runs), the probability of improvement with its interval, bootstrap
bands of curves, and the seeds needed for a given power (a normal approximation).

Every function takes a seed; intervals use :data:`N_RESAMPLES` resamples at :data:`CONFIDENCE`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
"""Confidence level of every interval."""
N_RESAMPLES = 2000
"""Bootstrap resamples of every interval."""
ALPHA = 0.05
"""Two-sided significance level of the power estimate."""
POWER = 0.8
"""Power the seed estimate aims for."""


def iqm_along(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The interquartile mean along ``axis`` (the statistic the bootstrap resamples)."""
    return stats.trim_mean(values, 0.25, axis=axis)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean (the mean of the middle 50%)."""
    return float(iqm_along(np.asarray(values, dtype=float)))


def bootstrap_ci(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0,
                 n_resamples: int = N_RESAMPLES, statistic: Callable[..., Any] = np.mean) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` (default the mean; ``scipy.stats.bootstrap``); a
    constant sample gives a point."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or np.ptp(arr) == 0:
        point = float(statistic(arr, axis=-1))
        return point, point
    res = stats.bootstrap((arr,), statistic, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float], statistic: Callable[..., Any] = np.mean, seed: int = 0) -> Interval:
        return cls(float(statistic(np.asarray(values, dtype=float), axis=-1)),
                   *bootstrap_ci(values, seed=seed, statistic=statistic))

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def text(self, digits: int = 4) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _improvement(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) over all pairs (vectorized over leading axes; ``axis`` must be the last)."""
    x, y = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
    return (x > y).mean(axis=(-2, -1)) + 0.5 * (x == y).mean(axis=(-2, -1))


def probability_of_improvement(x: Sequence[float], y: Sequence[float], lower_is_better: bool = False,
                               seed: int = 0) -> Interval:
    """P(X better than Y) = P(X > Y) + ½ P(X = Y) over all pairs of runs, i.e. the Mann-Whitney U of X
    divided by n·m (Agarwal et al. 2021), with a percentile bootstrap CI that resamples each
    learner's runs independently (as rliable does). ``lower_is_better`` compares X < Y instead."""
    sign = -1.0 if lower_is_better else 1.0
    xa, ya = sign * np.asarray(x, dtype=float), sign * np.asarray(y, dtype=float)
    point = float(_improvement(xa, ya))
    if min(xa.size, ya.size) < 2 or np.ptp(np.concatenate([xa, ya])) == 0:
        return Interval(point, point, point)
    res = stats.bootstrap((xa, ya), _improvement, paired=False, vectorized=True, confidence_level=CONFIDENCE,
                          n_resamples=N_RESAMPLES, method="percentile", random_state=np.random.default_rng(seed))
    return Interval(point, float(res.confidence_interval.low), float(res.confidence_interval.high))


def seeds_needed(difference: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds per learner to detect ``difference`` with ``power`` at two-sided ``alpha``, normal
    approximation: n = ((z_{1−α/2} + z_power) · sd / |difference|)², where ``sd`` is the standard
    deviation of the paired differences (or √(sd_x² + sd_y²) for two independent samples).
    ``inf`` when the difference is 0."""
    if difference == 0:
        return math.inf
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float((z * sd / abs(difference)) ** 2)


def curve_band(curves: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0,
               n_resamples: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and bootstrap band over runs (rows) at every column, vectorized over columns."""
    rng = np.random.default_rng(seed)
    n = curves.shape[0]
    means = curves.mean(axis=0)
    if n < 2:
        return means, means.copy(), means.copy()
    idx = rng.integers(0, n, size=(n_resamples, n))
    boot = curves[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return means, np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)


def best_so_far(rewards: np.ndarray) -> np.ndarray:
    """The best value so far after each element (a running maximum)."""
    return np.maximum.accumulate(rewards)
