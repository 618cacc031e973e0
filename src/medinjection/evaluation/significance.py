"""Paired significance tests between models on their item-level scores.

Comparisons: every mixture against the base model, and every pair of mixtures (paper order).
Unit of resampling: the test item. Both models of a comparison must have been scored on exactly
the same items (same test sets, same ids); the test is a paired, stratified bootstrap
(``stats.paired_bootstrap``): for ``em`` (Table 1's aggregated EM) the MCQ and MCQU pools are
resampled separately and the statistic is the mean of the two task differences, the same
definition as the table cell.

Several training seeds per mixture: a mixture's item score is the mean of its seeds' item scores
(the seed-averaged model is the system compared); the spread across seeds is Table 1's sd.

Multiple comparisons: p-values are adjusted within each metric over all its comparisons (7
mixtures vs base + 21 mixture pairs in the study). Holm (default) controls the family-wise error
rate under any dependence between the tests, which matters here because comparisons share models
and items; Benjamini-Hochberg (``bh``) controls the false discovery rate instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd

from medinjection.evaluation.stats import CORRECTIONS, paired_bootstrap
from medinjection.evaluation.tables import model_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignificanceMetric:
    """A metric tested for significance: an item column, pooled over the items of some tasks.

    With ``macro`` each task is a stratum and the statistic is the mean of the task means.
    """

    column: str
    tasks: tuple[str, ...]
    macro: bool = False


SIGNIFICANCE_METRICS: dict[str, SignificanceMetric] = {
    "em": SignificanceMetric("em_constrained", ("mcq", "mcqu"), macro=True),
    "em_mcq": SignificanceMetric("em_constrained", ("mcq",)),
    "em_mcqu": SignificanceMetric("em_constrained", ("mcqu",)),
    "em_greedy": SignificanceMetric("em_greedy", ("mcq", "mcqu"), macro=True),
    "hamming_mcq": SignificanceMetric("hamming_constrained", ("mcq",)),
    "judge": SignificanceMetric("judge", ("oeq",)),
    "rougeL": SignificanceMetric("rougeL", ("oeq",)),
    "bertscore_f1": SignificanceMetric("bertscore_f1", ("oeq",)),
}
SIGNIFICANCE_COLUMNS: tuple[str, ...] = (
    "model_a", "model_b", "comparison", "metric", "value_a", "value_b", "diff", "diff_low",
    "diff_high", "p", "p_adjusted", "significant", "correction", "n_items", "seeds_a", "seeds_b",
)  # fmt: skip


def load_items(item_files: list[Path]) -> dict[str, pd.DataFrame]:
    """Item scores per Table 1 row (base or mixture), averaged over the row's training seeds."""
    frames = [pd.read_parquet(path) for path in map(Path, item_files)]
    if not frames:
        raise ValueError("significance: no item-score files given")
    items = pd.concat(frames, ignore_index=True)
    items["row"] = items["model"].map(model_row)
    out: dict[str, pd.DataFrame] = {}
    for row, group in items.groupby("row", sort=False):
        seeds = group["model"].nunique()
        numeric = group.drop(columns=["model", "row"])
        mean = numeric.groupby(["testset", "task", "id"], sort=True).mean().reset_index()
        counts = group.groupby(["testset", "id"]).size()
        if (counts != seeds).any():
            bad = counts[counts != seeds].index[0]
            raise ValueError(
                f"significance: item {bad} of {row!r} is scored by {counts[bad]} of its {seeds} "
                "training runs; rescore the runs so they cover the same test items"
            )
        mean.attrs["seeds"] = seeds
        out[str(row)] = mean
    return out


def comparison_pairs(rows: list[str], base: str = "base") -> list[tuple[str, str, str]]:
    """(model_a, model_b, kind): each mixture vs base, then each pair of mixtures, in order."""
    mixtures = [r for r in rows if r != base]
    pairs = [(m, base, "vs_base") for m in mixtures] if base in rows else []
    return pairs + [(a, b, "mixture_pair") for a, b in combinations(mixtures, 2)]


def _strata(frame: pd.DataFrame, metric: SignificanceMetric) -> list[pd.Series]:
    """Item scores of a metric, one series per stratum (task), indexed by (testset, id)."""
    tasks = [(t,) for t in metric.tasks] if metric.macro else [metric.tasks]
    out = []
    for task_group in tasks:
        picked = frame[frame["task"].isin(task_group)].set_index(["testset", "id"])
        out.append(picked[metric.column].fillna(0.0).sort_index())
    return out


def compare(
    a: pd.DataFrame, b: pd.DataFrame, metric: SignificanceMetric, boot: dict, names: tuple
) -> dict[str, Any]:
    """Paired bootstrap of one metric between two models (values as fractions)."""
    groups_a, groups_b = _strata(a, metric), _strata(b, metric)
    for sa, sb in zip(groups_a, groups_b, strict=True):
        if not sa.index.equals(sb.index):
            raise ValueError(
                f"significance: {names[0]!r} and {names[1]!r} are scored on different items "
                f"for {metric.column} ({len(sa)} vs {len(sb)}); both must cover the same test sets"
            )
    present = [k for k, s in enumerate(groups_a) if len(s)]
    result = paired_bootstrap(
        [groups_a[k].to_numpy() for k in present],
        [groups_b[k].to_numpy() for k in present],
        int(boot["samples"]),
        int(boot["seed"]),
    )
    value_a = sum(groups_a[k].mean() for k in present) / len(present) if present else None
    value_b = sum(groups_b[k].mean() for k in present) / len(present) if present else None
    return {
        "value_a": value_a, "value_b": value_b, "diff": result.diff, "diff_low": result.low,
        "diff_high": result.high, "p": result.p, "n_items": result.n,
    }  # fmt: skip


def significance_frame(
    items: dict[str, pd.DataFrame],
    model_order: list[str],
    metric_names: list[str],
    correction: str,
    alpha: float,
    boot: dict,
) -> pd.DataFrame:
    """One row per (comparison, metric), with Holm/BH-adjusted p-values within each metric."""
    unknown = [m for m in metric_names if m not in SIGNIFICANCE_METRICS]
    if unknown or correction not in CORRECTIONS:
        raise KeyError(
            f"evaluation.significance: unknown metric(s) {unknown} (valid: "
            f"{sorted(SIGNIFICANCE_METRICS)}) or correction {correction!r} "
            f"(valid: {sorted(CORRECTIONS)})"
        )
    rows_present = [r for r in model_order if r in items] + sorted(set(items) - set(model_order))
    records = []
    for name in metric_names:
        metric = SIGNIFICANCE_METRICS[name]
        block = []
        for a, b, kind in comparison_pairs(rows_present):
            row = compare(items[a], items[b], metric, boot, (a, b))
            if row["n_items"] == 0:
                continue  # no test set of this metric's tasks
            seeds = {"seeds_a": items[a].attrs["seeds"], "seeds_b": items[b].attrs["seeds"]}
            block.append(
                {"model_a": a, "model_b": b, "comparison": kind, "metric": name, **row, **seeds}
            )
        adjusted = CORRECTIONS[correction]([r["p"] for r in block])
        for row, p_adj in zip(block, adjusted, strict=True):
            row.update(p_adjusted=p_adj, significant=bool(p_adj < alpha), correction=correction)
        records.extend(block)
    return pd.DataFrame(records, columns=list(SIGNIFICANCE_COLUMNS))


def write_significance(
    item_files: list[Path],
    model_order: list[str],
    metrics: list[str],
    correction: str,
    alpha: float,
    bootstrap: dict,
    out_csv: Path,
) -> None:
    """Write results/tables/significance.csv from the item-level score files of every model."""
    frame = significance_frame(
        load_items(item_files), model_order, list(metrics), correction, alpha, bootstrap
    )
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_csv, index=False)
    significant = int(frame["significant"].sum()) if len(frame) else 0
    log.info(
        "significance: %d comparisons, %d significant at %.2f after %s -> %s",
        len(frame), significant, alpha, correction, out_csv,
    )  # fmt: skip
