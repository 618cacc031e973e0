"""Per-dataset × model tables: one Markdown table per metric, from the long per-dataset CSV.

Rows: Table 1 rows (base and mixtures, paper order; several training seeds are averaged and
shown as mean ± sd). Columns: the test sets that have the metric. EM and Hamming (greedy and
constrained decoding) are printed in percent as the paper does, the open-question metrics (BLEU,
chrF, ROUGE-1/2/L, BERTScore F1, judge) as fractions; a single run shows its 95% bootstrap
interval under the value.
"""

from __future__ import annotations

import logging

import pandas as pd

from medinjection.evaluation.tables import model_row, ordered_models

log = logging.getLogger(__name__)

# metric -> (title, scale)
PER_DATASET_METRICS: dict[str, tuple[str, float]] = {
    "em_constrained": ("Exact match, constrained decoding (%)", 100.0),
    "em_greedy": ("Exact match, greedy decoding (%)", 100.0),
    "hamming_constrained": ("Hamming score, constrained decoding (%, MCQ only)", 100.0),
    "hamming_greedy": ("Hamming score, greedy decoding (%, MCQ only)", 100.0),
    "invalid_greedy": ("Invalid greedy outputs (%, scored wrong)", 100.0),
    "bleu": ("Corpus BLEU (sacrebleu, 0-1)", 1.0),
    "chrf": ("Corpus chrF (sacrebleu, 0-1)", 1.0),
    "rouge1": ("ROUGE-1 F1 (French-safe tokenizer, 0-1)", 1.0),
    "rouge2": ("ROUGE-2 F1 (French-safe tokenizer, 0-1)", 1.0),
    "rougeL": ("ROUGE-L F1 (French-safe tokenizer, 0-1)", 1.0),
    "bertscore_f1": ("BERTScore F1 (0-1; rescaled if settings say so)", 1.0),
    "judge": ("LLM-as-a-judge (0-1)", 1.0),
}


def wide_table(long: pd.DataFrame, metric: str, model_order: list[str]) -> pd.DataFrame:
    """Rows = Table 1 rows, columns = test sets; cells are display strings."""
    scale = PER_DATASET_METRICS[metric][1]
    frame = long.assign(row=long["model"].map(model_row))
    values = frame[frame["metric"] == metric]
    bounds = frame[frame["metric"].isin([f"{metric}_low", f"{metric}_high"])]
    testsets = sorted(values["testset"].unique())
    rows = ordered_models(list(dict.fromkeys(values["row"])), model_order)
    cells = pd.DataFrame(index=rows, columns=testsets, dtype=object)
    for (row, testset), group in values.groupby(["row", "testset"]):
        runs = group["value"] * scale
        text = f"{runs.mean():.2f}"
        if len(runs) > 1:
            text += f" ± {runs.std(ddof=1):.2f}"
        else:
            mask = (bounds["model"] == group["model"].iloc[0]) & (bounds["testset"] == testset)
            pick = bounds[mask].set_index("metric")["value"]
            if len(pick) == 2:
                low, high = pick[f"{metric}_low"] * scale, pick[f"{metric}_high"] * scale
                text += f" [{low:.2f}, {high:.2f}]"
        cells.loc[row, testset] = text
    return cells.fillna("–")


def per_dataset_markdown(long: pd.DataFrame, model_order: list[str]) -> str:
    """Every per-dataset metric as a Markdown section with a model × test set table."""
    parts = [
        "# Per-dataset results\n",
        "One table per metric; rows are models (mean ± sd over training seeds when there are "
        "several, else the value and its 95% bootstrap interval), columns are test sets.\n",
    ]
    present = set(long["metric"])
    for metric, (title, _) in PER_DATASET_METRICS.items():
        if metric not in present:
            continue
        table = wide_table(long, metric, model_order)
        header = "| Model | " + " | ".join(table.columns) + " |"
        rule = "|---|" + "---:|" * len(table.columns)
        body = [f"| {row} | " + " | ".join(table.loc[row]) + " |" for row in table.index]
        parts.append(f"## {title} (`{metric}`)\n\n" + "\n".join([header, rule, *body]) + "\n")
    return "\n".join(parts)
