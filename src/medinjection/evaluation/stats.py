"""Bootstrap statistics: percentile confidence intervals and paired significance tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Stat = Callable[[np.ndarray], float]
CI_LEVEL = 0.95


def _percentile_interval(replicates: np.ndarray) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - CI_LEVEL) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))


def bootstrap_replicates(
    values: Sequence[float] | np.ndarray, n_samples: int, seed: int, stat: Stat = np.mean
) -> np.ndarray:
    """`stat` on `n_samples` resamples (with replacement) of `values`; empty input gives NaNs."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return np.full(n_samples, np.nan)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, data.size, size=(n_samples, data.size))
    if stat is np.mean:  # vectorised fast path for the common case
        return data[index].mean(axis=1)
    return np.array([stat(data[row]) for row in index], dtype=float)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n_samples: int, seed: int, stat: Stat = np.mean
) -> tuple[float, float]:
    """Percentile 95% bootstrap interval of `stat` over `values`, reproducible under `seed`."""
    return _percentile_interval(bootstrap_replicates(values, n_samples, seed, stat))


def macro_bootstrap_ci(
    groups: Sequence[Sequence[float]], n_samples: int, seed: int
) -> tuple[float, float]:
    """95% interval of the mean of group means, each group resampled on its own (stratified)."""
    present = [g for g in groups if len(g) > 0]
    if not present:
        return (float("nan"), float("nan"))
    reps = [bootstrap_replicates(g, n_samples, seed + k) for k, g in enumerate(present)]
    return _percentile_interval(np.mean(np.vstack(reps), axis=0))


def paired_bootstrap_pvalue(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_samples: int, seed: int
) -> float:
    """Two-sided paired bootstrap p-value for mean(a) != mean(b) (items resampled jointly).

    The resampled differences are centred on zero (null hypothesis) and compared with the observed
    difference in absolute value; the +1 correction keeps the p-value above zero.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired bootstrap needs equal lengths, got {x.size} and {y.size}")
    if x.size == 0:
        return float("nan")
    diff = x - y
    observed = float(diff.mean())
    reps = bootstrap_replicates(diff, n_samples, seed)
    extreme = np.abs(reps - observed) >= abs(observed) - 1e-12
    return float((extreme.sum() + 1) / (n_samples + 1))
