"""Paired significance tests between models on their item-level scores.

Comparisons: every mixture against the base model, and every pair of mixtures (paper order).
Unit of resampling: the test item. Both models of a comparison must have been scored on exactly
the same items (same test sets, same ids). ``evaluation.significance.method`` picks the p-value:

- ``bootstrap`` (default): paired, stratified bootstrap (``stats.paired_bootstrap``): items are
  resampled jointly for both models; for ``em`` (Table 1's aggregated EM) the MCQ and MCQU pools
  are resampled separately and the statistic is the mean of the two task differences, the same
  definition as the table cell.
- ``permutation``: paired sign-flip test (``stats.paired_permutation_pvalue``): each resample
  swaps every item's two scores with probability 1/2, within its task, same statistic. It tests
  exchangeability of the two models rather than relying on the bootstrap's approximation of the
  sampling distribution. ``diff_low``/``diff_high`` still come from the paired bootstrap (a
  permutation test gives no interval), so they are the same under both methods.

Corpus metrics (``bleu``, ``chrf``): the item file holds each item's sacrebleu sufficient
statistics; the corpus is every open-question item (all OEQ test sets pooled, like ``judge``), a
resample sums the statistics per model and rescores each corpus, and the statistic is
corpus(a) - corpus(b) (bootstrap: same item indices for both; permutation: items' statistics
swapped between the models).

Several training seeds per mixture: a mixture's item score is the mean of its seeds' item scores
(the seed-averaged model is the system compared); the spread across seeds is Table 1's sd. For
corpus metrics the seeds' statistics are summed per item: the corpus score of all the seeds'
outputs pooled (one seed: exactly the model's corpus score).

Multiple comparisons: p-values are adjusted within each metric over all its comparisons (7
mixtures vs base + 21 mixture pairs in the study). Holm (default) controls the family-wise error
rate under any dependence between the tests, which matters here because comparisons share models
and items; Benjamini-Hochberg (``bh``) controls the false discovery rate instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medinjection.evaluation import metrics as corpus_metrics
from medinjection.evaluation.scoring import ITEM_STATS
from medinjection.evaluation.stats import (
    CORRECTIONS,
    METHODS,
    Method,
    PairedComparison,
    paired_bootstrap,
    paired_corpus_bootstrap,
    paired_corpus_permutation_pvalue,
    paired_permutation_pvalue,
)
from medinjection.evaluation.tables import model_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignificanceMetric:
    """A metric tested for significance: an item column, pooled over the items of some tasks.

    With ``macro`` each task is a stratum and the statistic is the mean of the task means. With
    ``corpus`` (a sacrebleu metric name) the column holds per-item sufficient statistics and the
    statistic is the corpus score of their sum.
    """

    column: str
    tasks: tuple[str, ...]
    macro: bool = False
    corpus: str | None = None


SIGNIFICANCE_METRICS: dict[str, SignificanceMetric] = {
    "em": SignificanceMetric("em_constrained", ("mcq", "mcqu"), macro=True),
    "em_mcq": SignificanceMetric("em_constrained", ("mcq",)),
    "em_mcqu": SignificanceMetric("em_constrained", ("mcqu",)),
    "em_greedy": SignificanceMetric("em_greedy", ("mcq", "mcqu"), macro=True),
    "hamming_mcq": SignificanceMetric("hamming_constrained", ("mcq",)),
    "judge": SignificanceMetric("judge", ("oeq",)),
    "rougeL": SignificanceMetric("rougeL", ("oeq",)),
    "bertscore_f1": SignificanceMetric("bertscore_f1", ("oeq",)),
    "bleu": SignificanceMetric("bleu_stats", ("oeq",), corpus=corpus_metrics.BLEU_METRIC),
    "chrf": SignificanceMetric("chrf_stats", ("oeq",), corpus=corpus_metrics.CHRF_METRIC),
}
DEFAULT_METHOD: Method = "bootstrap"
SIGNIFICANCE_COLUMNS: tuple[str, ...] = (
    "model_a", "model_b", "comparison", "metric", "value_a", "value_b", "diff", "diff_low",
    "diff_high", "p", "p_adjusted", "significant", "correction", "method",
    "n_items", "seeds_a", "seeds_b",
)  # fmt: skip


ITEM_KEYS = ["testset", "task", "id"]


def load_items(item_files: list[Path]) -> dict[str, pd.DataFrame]:
    """Item scores per Table 1 row (base or mixture), averaged over the row's training seeds
    (corpus sufficient statistics: summed over them)."""
    frames = [pd.read_parquet(path) for path in map(Path, item_files)]
    if not frames:
        raise ValueError("significance: no item-score files given")
    items = pd.concat(frames, ignore_index=True)
    items["row"] = items["model"].map(model_row)
    stats_columns = [c for c in ITEM_STATS if c in items.columns]
    out: dict[str, pd.DataFrame] = {}
    for row, group in items.groupby("row", sort=False):
        seeds = group["model"].nunique()
        numeric = group.drop(columns=["model", "row", *stats_columns])
        mean = numeric.groupby(ITEM_KEYS, sort=True).mean().reset_index()
        counts = group.groupby(["testset", "id"]).size()
        if (counts != seeds).any():
            bad = counts[counts != seeds].index[0]
            raise ValueError(
                f"significance: item {bad} of {row!r} is scored by {counts[bad]} of its {seeds} "
                "training runs; rescore the runs so they cover the same test items"
            )
        for column in stats_columns:
            mean[column] = _summed_stats(group, column, seeds, mean)
        mean.attrs["seeds"] = seeds
        out[str(row)] = mean
    return out


def _summed_stats(group: pd.DataFrame, column: str, seeds: int, mean: pd.DataFrame) -> list:
    """Per-item sum over seeds of a statistics column, aligned with `mean`'s rows; None where
    a seed's file lacks the statistics (``compare`` then refuses the corpus metric)."""
    present = group[group[column].notna()]
    sums = {
        key: np.sum(np.stack(list(values)), axis=0)
        for key, values in present.groupby(ITEM_KEYS, sort=False)[column]
        if len(values) == seeds
    }
    return [sums.get(key) for key in mean[ITEM_KEYS].itertuples(index=False, name=None)]


def comparison_pairs(rows: list[str], base: str = "base") -> list[tuple[str, str, str]]:
    """(model_a, model_b, kind): each mixture vs base, then each pair of mixtures, in order."""
    mixtures = [r for r in rows if r != base]
    pairs = [(m, base, "vs_base") for m in mixtures] if base in rows else []
    return pairs + [(a, b, "mixture_pair") for a, b in combinations(mixtures, 2)]


def _strata(frame: pd.DataFrame, metric: SignificanceMetric) -> list[pd.Series]:
    """Item scores of a metric, one series per stratum (task), indexed by (testset, id)."""
    tasks: list[tuple[str, ...]] = [(t,) for t in metric.tasks] if metric.macro else [metric.tasks]
    out = []
    for task_group in tasks:
        picked = frame[frame["task"].isin(task_group)].set_index(["testset", "id"])
        out.append(picked[metric.column].fillna(0.0).sort_index())
    return out


def _check_same_items(index_a: pd.Index, index_b: pd.Index, column: str, names: tuple) -> None:
    if not index_a.equals(index_b):
        raise ValueError(
            f"significance: {names[0]!r} and {names[1]!r} are scored on different items "
            f"for {column} ({len(index_a)} vs {len(index_b)}); both must cover the same test sets"
        )


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metric: SignificanceMetric,
    boot: dict,
    names: tuple,
    method: Method = DEFAULT_METHOD,
) -> dict[str, Any]:
    """Paired test of one metric between two models (values as fractions): the difference and
    its bootstrap interval, and the p-value of `method`."""
    if metric.corpus is not None:
        return _compare_corpus(a, b, metric, boot, names, method)
    groups_a, groups_b = _strata(a, metric), _strata(b, metric)
    for sa, sb in zip(groups_a, groups_b, strict=True):
        _check_same_items(sa.index, sb.index, metric.column, names)
    present = [k for k, s in enumerate(groups_a) if len(s)]
    arrays_a = [groups_a[k].to_numpy() for k in present]
    arrays_b = [groups_b[k].to_numpy() for k in present]
    samples, seed = int(boot["samples"]), int(boot["seed"])
    result = paired_bootstrap(arrays_a, arrays_b, samples, seed)
    if method == "permutation":
        p = paired_permutation_pvalue(arrays_a, arrays_b, samples, seed)
        result = replace(result, p=p)
    value_a = sum(groups_a[k].mean() for k in present) / len(present) if present else None
    value_b = sum(groups_b[k].mean() for k in present) / len(present) if present else None
    return _row(value_a, value_b, result)


def _row(value_a: float | None, value_b: float | None, result: PairedComparison) -> dict:
    return {
        "value_a": value_a, "value_b": value_b, "diff": result.diff, "diff_low": result.low,
        "diff_high": result.high, "p": result.p, "n_items": result.n,
    }  # fmt: skip


def _corpus_stats(frame: pd.DataFrame, metric: SignificanceMetric, name: str) -> pd.Series:
    """Per-item sufficient statistics of a corpus metric, indexed by (testset, id)."""
    picked = frame[frame["task"].isin(metric.tasks)].set_index(["testset", "id"]).sort_index()
    if metric.column not in picked.columns:
        values = pd.Series([None] * len(picked), index=picked.index, dtype=object)
    else:
        values = picked[metric.column]
    missing = [key for key, value in values.items() if not isinstance(value, np.ndarray)]
    if missing:
        raise ValueError(
            f"significance: item {missing[0]} of {name!r} has no {metric.column} (sacrebleu "
            f"sufficient statistics) in its item-score file(s), {len(missing)} item(s) in all; "
            "rerun the score rule for it (files written before corpus statistics were recorded)"
        )
    return values


def _compare_corpus(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metric: SignificanceMetric,
    boot: dict,
    names: tuple,
    method: Method,
) -> dict[str, Any]:
    """Paired test of corpus(a) - corpus(b) on summed per-item sufficient statistics."""
    assert metric.corpus is not None
    series_a, series_b = _corpus_stats(a, metric, names[0]), _corpus_stats(b, metric, names[1])
    _check_same_items(series_a.index, series_b.index, metric.column, names)
    if not len(series_a):
        nan = float("nan")
        return _row(None, None, PairedComparison(nan, nan, nan, nan, 0))
    stats_a, stats_b = np.stack(list(series_a)), np.stack(list(series_b))
    score = corpus_metrics.corpus_scorer(metric.corpus)
    samples, seed = int(boot["samples"]), int(boot["seed"])
    result = paired_corpus_bootstrap(stats_a, stats_b, score, samples, seed)
    if method == "permutation":
        p = paired_corpus_permutation_pvalue(stats_a, stats_b, score, samples, seed)
        result = replace(result, p=p)
    return _row(score(stats_a.sum(axis=0)), score(stats_b.sum(axis=0)), result)


def significance_frame(
    items: dict[str, pd.DataFrame],
    model_order: list[str],
    metric_names: list[str],
    correction: str,
    alpha: float,
    boot: dict,
    method: Method = DEFAULT_METHOD,
) -> pd.DataFrame:
    """One row per (comparison, metric), with Holm/BH-adjusted p-values within each metric."""
    unknown = [m for m in metric_names if m not in SIGNIFICANCE_METRICS]
    if unknown or correction not in CORRECTIONS or method not in METHODS:
        raise KeyError(
            f"evaluation.significance: unknown metric(s) {unknown} (valid: "
            f"{sorted(SIGNIFICANCE_METRICS)}), correction {correction!r} "
            f"(valid: {sorted(CORRECTIONS)}) or method {method!r} (valid: {list(METHODS)})"
        )
    rows_present = [r for r in model_order if r in items] + sorted(set(items) - set(model_order))
    records = []
    for name in metric_names:
        metric = SIGNIFICANCE_METRICS[name]
        block = []
        for a, b, kind in comparison_pairs(rows_present):
            row = compare(items[a], items[b], metric, boot, (a, b), method)
            if row["n_items"] == 0:
                continue  # no test set of this metric's tasks
            seeds = {"seeds_a": items[a].attrs["seeds"], "seeds_b": items[b].attrs["seeds"]}
            block.append(
                {"model_a": a, "model_b": b, "comparison": kind, "metric": name, **row, **seeds}
            )
        adjusted = CORRECTIONS[correction]([r["p"] for r in block])
        for row, p_adj in zip(block, adjusted, strict=True):
            row.update(
                p_adjusted=p_adj, significant=bool(p_adj < alpha), correction=correction,
                method=method,
            )  # fmt: skip
        records.extend(block)
    return pd.DataFrame(records, columns=list(SIGNIFICANCE_COLUMNS))
