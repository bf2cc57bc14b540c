"""Accuracy with bootstrap intervals, and pass@k coverage with the unbiased estimator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021, arXiv:2107.03374): the chance that at least one of k samples drawn
    without replacement from n, of which c are correct, is correct: 1 - C(n-c, k) / C(n, k).

    >>> pass_at_k(10, 0, 5), pass_at_k(10, 10, 1), round(pass_at_k(10, 3, 1), 3), round(pass_at_k(4, 1, 2), 3)
    (0.0, 1.0, 0.3, 0.5)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Coverage over problems: the mean of pass@k over (n, c) pairs."""
    return float(np.mean([pass_at_k(n, c, k) for n, c in counts])) if counts else float("nan")


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval; seeded, so the same values give the same interval.

    >>> bootstrap_ci([1, 0, 1, 1], seed=1) == bootstrap_ci([1, 0, 1, 1], seed=1)
    True
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(x.mean()), float(lo), float(hi)


def paired_difference(a: Mapping[str, float], b: Mapping[str, float], *, level: float = 0.95, resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean per-item difference a - b over the same items, with its seeded percentile bootstrap interval. Two
    strategies replayed on the same draws share most of their noise; resampling items, not each side alone, gives
    the interval of the difference, far narrower than the two accuracies' intervals suggest.

    >>> paired_difference({"x": 1, "y": 0, "z": 1}, {"x": 1, "y": 0, "z": 0}, seed=0)[0]
    0.3333333333333333
    >>> paired_difference({"x": 1}, {"y": 1})
    Traceback (most recent call last):
    ...
    ValueError: paired items differ: 1 only in a, 1 only in b
    """
    if a.keys() != b.keys():
        raise ValueError(f"paired items differ: {len(a.keys() - b.keys())} only in a, {len(b.keys() - a.keys())} only in b")
    return bootstrap_ci([float(a[k]) - float(b[k]) for k in sorted(a)], level=level, resamples=resamples, seed=seed)
