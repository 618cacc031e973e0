"""Bootstrap statistics: percentile confidence intervals, paired significance tests (bootstrap
and sign-flip permutation, on item means or on corpus scores from summed sufficient statistics),
and multiple-comparison corrections (Holm, Benjamini-Hochberg)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Stat = Callable[[np.ndarray], float]
CorpusScore = Callable[[np.ndarray], float]  # summed sufficient statistics -> corpus score
Method = Literal["bootstrap", "permutation"]
METHODS: tuple[Method, ...] = ("bootstrap", "permutation")
CI_LEVEL = 0.95
TIE = 1e-12  # replicates within this of the observed |difference| count as extreme


def percentile_interval(replicates: np.ndarray) -> tuple[float, float]:
    """Percentile 95% interval of the finite replicates (NaN, NaN when none is finite)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - CI_LEVEL) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))


CHUNK_CELLS = 4_000_000  # resample indices drawn per chunk (32 MB of int64), whatever n_samples


def _index_chunks(rng: np.random.Generator, size: int, n_samples: int) -> Iterator[np.ndarray]:
    """Resample index matrices of at most CHUNK_CELLS cells, n_samples rows in all."""
    rows = max(1, CHUNK_CELLS // max(size, 1))
    for start in range(0, n_samples, rows):
        yield rng.integers(0, size, size=(min(rows, n_samples - start), size))


def bootstrap_replicates(
    values: Sequence[float] | np.ndarray, n_samples: int, seed: int, stat: Stat = np.mean
) -> np.ndarray:
    """`stat` on `n_samples` resamples (with replacement) of `values`; empty input gives NaNs."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return np.full(n_samples, np.nan)
    rng = np.random.default_rng(seed)
    if stat is np.mean:  # vectorised fast path for the common case
        return np.concatenate(
            [data[index].mean(axis=1) for index in _index_chunks(rng, data.size, n_samples)]
        )
    index = rng.integers(0, data.size, size=(n_samples, data.size))
    return np.array([stat(data[row]) for row in index], dtype=float)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n_samples: int, seed: int, stat: Stat = np.mean
) -> tuple[float, float]:
    """Percentile 95% bootstrap interval of `stat` over `values`, reproducible under `seed`."""
    return percentile_interval(bootstrap_replicates(values, n_samples, seed, stat))


def macro_bootstrap_ci(
    groups: Sequence[Sequence[float]], n_samples: int, seed: int
) -> tuple[float, float]:
    """95% interval of the mean of group means, each group resampled on its own (stratified)."""
    present = [g for g in groups if len(g) > 0]
    if not present:
        return (float("nan"), float("nan"))
    reps = [bootstrap_replicates(g, n_samples, seed + k) for k, g in enumerate(present)]
    return percentile_interval(np.mean(np.vstack(reps), axis=0))


def _two_sided_p(observed: float, null_reps: np.ndarray) -> float:
    """Two-sided Monte Carlo p-value of replicates drawn under the null hypothesis (centred on
    zero): the share at least as far from zero as the observed value, +1 corrected."""
    extreme = np.abs(null_reps) >= abs(observed) - TIE
    return float((extreme.sum() + 1) / (null_reps.size + 1))


def _paired_diffs(
    groups_a: Sequence[Sequence[float]], groups_b: Sequence[Sequence[float]], test: str
) -> list[np.ndarray]:
    """Per group, the item differences a - b (empty groups dropped); unequal groups raise."""
    diffs = []
    for k, (a, b) in enumerate(zip(groups_a, groups_b, strict=True)):
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if x.shape != y.shape:
            raise ValueError(
                f"{test} group {k}: {x.size} and {y.size} items; both systems must be scored "
                "on the same items"
            )
        if x.size:
            diffs.append(x - y)
    return diffs


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
    return _two_sided_p(observed, bootstrap_replicates(diff, n_samples, seed) - observed)


@dataclass(frozen=True)
class PairedComparison:
    """Observed difference mean(a) - mean(b), its 95% bootstrap interval and two-sided p-value."""

    diff: float
    low: float
    high: float
    p: float
    n: int


def paired_bootstrap(
    groups_a: Sequence[Sequence[float]],
    groups_b: Sequence[Sequence[float]],
    n_samples: int,
    seed: int,
) -> PairedComparison:
    """Paired, stratified bootstrap of the difference of two systems on the same items.

    The statistic is the mean over groups of the within-group mean difference (one group: a
    plain mean; the MCQ and MCQU pools: Table 1's aggregated EM). Items are resampled jointly
    for both systems within each group. The p-value is that of ``paired_bootstrap_pvalue``:
    replicates centred on zero, compared with the observed difference in absolute value, +1
    corrected, so identical systems give p = 1.
    """
    diffs = _paired_diffs(groups_a, groups_b, "paired bootstrap")
    if not diffs:
        nan = float("nan")
        return PairedComparison(nan, nan, nan, nan, 0)
    observed = float(np.mean([d.mean() for d in diffs]))
    reps = np.mean(
        np.vstack([bootstrap_replicates(d, n_samples, seed + k) for k, d in enumerate(diffs)]),
        axis=0,
    )
    low, high = percentile_interval(reps)
    p = _two_sided_p(observed, reps - observed)
    return PairedComparison(observed, low, high, p, int(sum(d.size for d in diffs)))


def _swap_chunks(rng: np.random.Generator, size: int, n_samples: int) -> Iterator[np.ndarray]:
    """Boolean swap matrices (True = exchange the item's two scores, probability 1/2)."""
    rows = max(1, CHUNK_CELLS // max(size, 1))
    for start in range(0, n_samples, rows):
        yield rng.random((min(rows, n_samples - start), size)) < 0.5


def paired_permutation_pvalue(
    groups_a: Sequence[Sequence[float]],
    groups_b: Sequence[Sequence[float]],
    n_samples: int,
    seed: int,
) -> float:
    """Two-sided paired sign-flip (swap) test of the statistic of ``paired_bootstrap``.

    Under the null hypothesis the two systems are exchangeable on each item, so each resample
    swaps every item's pair of scores with probability 1/2 (within its group: swapping never
    moves an item to another task) and recomputes the mean over groups of the mean difference;
    a swap flips the sign of that item's difference. ``(count + 1) / (n_samples + 1)``, where
    count is the resamples at least as far from zero as the observed difference: identical
    systems give p = 1. Group k draws from ``default_rng(seed + k)``.
    """
    diffs = _paired_diffs(groups_a, groups_b, "permutation test")
    if not diffs:
        return float("nan")
    observed = float(np.mean([d.mean() for d in diffs]))
    reps = np.zeros(n_samples)
    for k, d in enumerate(diffs):
        rng = np.random.default_rng(seed + k)
        chunks = _swap_chunks(rng, d.size, n_samples)
        reps += np.concatenate([np.where(swap, -d, d).mean(axis=1) for swap in chunks]) / len(diffs)
    return _two_sided_p(observed, reps)


def _corpus_pair(stats_a: np.ndarray, stats_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(stats_a, dtype=float), np.asarray(stats_b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"paired corpus test needs two (items x statistics) matrices of one shape, got "
            f"{a.shape} and {b.shape}; both systems must be scored on the same items"
        )
    return a, b


def _corpus_diffs(score: CorpusScore, summed_a: np.ndarray, summed_b: np.ndarray) -> np.ndarray:
    return np.array([score(x) - score(y) for x, y in zip(summed_a, summed_b, strict=True)])


def paired_corpus_bootstrap(
    stats_a: np.ndarray, stats_b: np.ndarray, score: CorpusScore, n_samples: int, seed: int
) -> PairedComparison:
    """Paired bootstrap of score(a) - score(b) for a corpus metric (BLEU, chrF).

    ``stats_*`` hold one row of sufficient statistics per item, rows aligned between systems;
    each resample draws the same item indices for both systems, sums their rows and rescores
    each corpus. Interval and p-value as in ``paired_bootstrap`` (replicates centred on zero).
    """
    a, b = _corpus_pair(stats_a, stats_b)
    if len(a) == 0:
        nan = float("nan")
        return PairedComparison(nan, nan, nan, nan, 0)
    observed = score(a.sum(axis=0)) - score(b.sum(axis=0))
    rng = np.random.default_rng(seed)
    reps = []
    for index in _index_chunks(rng, len(a), n_samples):
        flat = (index + len(a) * np.arange(len(index))[:, None]).ravel()
        counts = np.bincount(flat, minlength=index.size).reshape(index.shape).astype(float)
        reps.append(_corpus_diffs(score, counts @ a, counts @ b))  # counts: draws of each item
    replicates = np.concatenate(reps)
    low, high = percentile_interval(replicates)
    p = _two_sided_p(observed, replicates - observed)
    return PairedComparison(float(observed), low, high, p, len(a))


def paired_corpus_permutation_pvalue(
    stats_a: np.ndarray, stats_b: np.ndarray, score: CorpusScore, n_samples: int, seed: int
) -> float:
    """Two-sided swap test of score(a) - score(b) for a corpus metric (approximate randomisation).

    Each resample exchanges every item's statistics rows between the two systems with
    probability 1/2 and rescores both corpora; p-value as in ``paired_permutation_pvalue``.
    """
    a, b = _corpus_pair(stats_a, stats_b)
    if len(a) == 0:
        return float("nan")
    total_a, total_b, delta = a.sum(axis=0), b.sum(axis=0), b - a
    observed = score(total_a) - score(total_b)
    rng = np.random.default_rng(seed)
    reps = []
    for swap in _swap_chunks(rng, len(a), n_samples):
        moved = swap.astype(float) @ delta  # what a gains (and b loses) from the swapped items
        reps.append(_corpus_diffs(score, total_a + moved, total_b - moved))
    return _two_sided_p(observed, np.concatenate(reps))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error); NaNs stay NaN, out of the family."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate); NaNs stay NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    running = 1.0
    for rank in range(m - 1, -1, -1):
        index = order[rank]
        running = min(running, m * p[index] / (rank + 1))
        out[index] = min(1.0, running)
    return out.tolist()


CORRECTIONS: dict[str, Callable[[Sequence[float]], list[float]]] = {
    "holm": holm,
    "bh": benjamini_hochberg,
}
