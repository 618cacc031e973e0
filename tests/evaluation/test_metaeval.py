"""The vectorised correlation bootstrap of the meta-evaluation against the per-resample scipy
computation it replaces (same resamples, same statistic, NaN where scipy's would be undefined)."""

from __future__ import annotations

import numpy as np
import pytest

from medinjection.evaluation import metaeval
from medinjection.evaluation.metaeval import CORRELATIONS, _corr, _corr_replicates, correlation_row
from medinjection.evaluation.stats import bootstrap_replicates, percentile_interval

SAMPLES, SEED = 300, 11


def _reference(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The former computation: one scipy call per resample of the item indices."""
    index = np.arange(x.size)

    def stat(idx: np.ndarray) -> float:
        picked = idx.astype(int)
        return _corr(name, x[picked], y[picked])[0]

    return bootstrap_replicates(index, SAMPLES, SEED, stat=stat)


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    human = rng.integers(0, 2, 40).astype(float)  # physician labels Oui/Non: ties everywhere
    return {
        "continuous": (rng.normal(size=30), rng.normal(size=30)),
        # judge scores on a 3-level scale against binary labels, as in the study's metaeval
        "ties": (rng.choice([0.0, 0.5, 1.0], 40), human),
        # 5 items, 2 distinct values a side: many resamples have a constant side (NaN), not all
        "some_constant_resamples": (
            np.array([0.0, 0.0, 0.0, 1.0, 1.0]),
            np.array([1.0, 0.0, 1.0, 1.0, 0.0]),
        ),
        "constant_scorer": (np.zeros(12), human[:12]),
        "constant_reference": (rng.normal(size=12), np.ones(12)),
        "two_items": (np.array([1.0, 2.0]), np.array([2.0, 1.0])),
        "one_item": (np.array([1.0]), np.array([3.0])),
        "empty": (np.array([]), np.array([])),
    }


@pytest.mark.parametrize("name", sorted(CORRELATIONS))
@pytest.mark.parametrize("case", sorted(_cases()))
def test_vectorised_replicates_match_per_resample_scipy(name, case):
    x, y = _cases()[case]
    expected = _reference(name, x, y)
    got = _corr_replicates(name, x, y, SAMPLES, SEED)
    assert got.shape == expected.shape == (SAMPLES,)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=0, atol=1e-12)
    if case == "some_constant_resamples":  # the case really mixes defined and undefined ones
        assert 0 < finite.sum() < SAMPLES


def test_kendall_chunks_give_the_same_replicates(monkeypatch):
    x, y = _cases()["ties"]
    whole = _corr_replicates("kendall", x, y, SAMPLES, SEED)
    monkeypatch.setattr(metaeval, "KENDALL_CELLS", 7 * x.size * x.size)  # 7 rows per chunk
    np.testing.assert_array_equal(_corr_replicates("kendall", x, y, SAMPLES, SEED), whole)


def test_correlation_row_intervals_match_the_former_per_resample_ones():
    x, y = _cases()["ties"]
    row = correlation_row(x, y, {"samples": SAMPLES, "seed": SEED})
    for name in CORRELATIONS:
        low, high = percentile_interval(_reference(name, x, y))
        assert row[f"{name}_low"] == pytest.approx(low, abs=1e-12)
        assert row[f"{name}_high"] == pytest.approx(high, abs=1e-12)
        assert row[f"{name}_low"] < row[f"{name}_high"]
