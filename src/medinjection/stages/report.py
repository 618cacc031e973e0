"""Stages of workflow/rules/report.smk: the significance table, Table 1 and the per-dataset
tables (formatted by `evaluation.tables` and `evaluation.per_dataset`), and the figures: Table 1
bars with 95% interval error bars, the per-dataset heat map, and the judge's verdicts against
answer length on the physician-annotated pairs (verbosity).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medinjection.evaluation.per_dataset import per_dataset_markdown
from medinjection.evaluation.significance import DEFAULT_METHOD, load_items, significance_frame
from medinjection.evaluation.stats import Method
from medinjection.evaluation.tables import model_row, ordered_models, write_table1
from medinjection.manifests import check_inputs
from medinjection.settings import BootstrapSettings, SignificanceSettings

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- rule significance


def write_significance(
    item_files: list[Path],
    model_order: list[str],
    significance: SignificanceSettings,
    bootstrap: BootstrapSettings,
    out_csv: Path,
    input_manifests: list[Path] | None = None,
) -> None:
    """Write results/tables/significance.csv from the item-level score files of every model
    (`evaluation.significance`: metrics, method, correction, alpha), first checked against
    `input_manifests` (score's; the rule gives them)."""
    if input_manifests is not None:
        check_inputs(item_files, input_manifests, "significance")
    method: Method = significance.method or DEFAULT_METHOD
    correction, alpha = significance.correction, significance.alpha
    frame = significance_frame(
        load_items(item_files), model_order, list(significance.metrics), correction, alpha,
        bootstrap.to_dict(), method,
    )  # fmt: skip
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_csv, index=False)
    significant = int(frame["significant"].sum()) if len(frame) else 0
    log.info(
        "significance (%s): %d comparisons, %d significant at %.2f after %s -> %s",
        method, len(frame), significant, alpha, correction, out_csv,
    )  # fmt: skip


# ---------------------------------------------------------------- rule table1


def write_per_dataset_markdown(per_dataset_csv: Path, model_order: list[str], out_md: Path) -> None:
    """Write results/tables/per_dataset.md from results/tables/per_dataset.csv."""
    long = pd.read_csv(per_dataset_csv)
    if long.empty:
        raise ValueError(f"{per_dataset_csv}: no per-dataset figures; did the score rule run?")
    Path(out_md).parent.mkdir(parents=True, exist_ok=True)
    Path(out_md).write_text(per_dataset_markdown(long, model_order), encoding="utf-8")
    log.info("per-dataset tables -> %s", out_md)


def write_tables(
    score_files: list[Path],
    significance_csv: Path,
    model_order: list[str],
    alpha: float,
    outputs: dict[str, Path],
    input_manifests: list[Path] | None = None,
) -> None:
    """Table 1 (``table1_csv``, ``table1_md``, ``table1_tex``) and the per-dataset tables
    (``per_dataset_csv`` long, ``per_dataset_md`` one model × test set table per metric); the
    score files are first checked against `input_manifests` (score's; the rule gives them)."""
    if input_manifests is not None:
        check_inputs(score_files, input_manifests, "table1")
    write_table1(
        score_files,
        model_order,
        out_csv=Path(outputs["table1_csv"]),
        out_md=Path(outputs["table1_md"]),
        out_per_dataset=Path(outputs["per_dataset_csv"]),
        significance_csv=Path(significance_csv),
        alpha=alpha,
        out_tex=Path(outputs["table1_tex"]),
    )
    write_per_dataset_markdown(
        Path(outputs["per_dataset_csv"]), model_order, Path(outputs["per_dataset_md"])
    )


# ---------------------------------------------------------------- rules plot_*


def _errors(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Asymmetric error-bar lengths (2 x n) from the low/high columns; missing bounds give 0."""
    value = frame[column].to_numpy(float)
    low = frame[f"{column}_low"].to_numpy(float)
    high = frame[f"{column}_high"].to_numpy(float)
    return np.nan_to_num(np.vstack([value - low, high - value]), nan=0.0).clip(min=0.0)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_table1(table_csv: Path, out_png: Path) -> None:
    """Two panels of bars (EM %, judge 0-1) in Table 1's model order, CIs as error bars."""
    plt = _pyplot()
    frame = pd.read_csv(table_csv)
    if frame.empty:
        raise ValueError(f"{table_csv}: Table 1 has no rows; nothing to plot")
    x = np.arange(len(frame))
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.3 * len(frame)), 4.0))
    panels = (
        ("em", "Exact match (%)", "tab:blue"),
        ("judge", "LLM-as-a-judge (0-1)", "tab:orange"),
    )
    for ax, (column, label, colour) in zip(axes, panels, strict=True):
        values = np.nan_to_num(frame[column].to_numpy(float), nan=0.0)
        ax.bar(x, values, yerr=_errors(frame, column), color=colour, capsize=3)
        ax.set_xticks(x, frame["model"].astype(str), rotation=45, ha="right")
        ax.set_ylabel(label)
        ax.set_ylim(0, 100 if column == "em" else 1)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Table 1: aggregated EM and judge score per training mixture")
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=150)
    plt.close(fig)
    log.info("wrote %s (%d models)", out_png, len(frame))


def heatmap_matrix(per_dataset: pd.DataFrame, model_order: list[str]) -> pd.DataFrame:
    """Model (Table 1 row, seed mean) × test set: constrained EM (%) for MCQ/MCQU, judge × 100
    for open questions, so one colour scale reads as "percent correct"."""
    wanted = ((per_dataset["task"] != "oeq") & (per_dataset["metric"] == "em_constrained")) | (
        (per_dataset["task"] == "oeq") & (per_dataset["metric"] == "judge")
    )
    picked = per_dataset[wanted].assign(row=per_dataset["model"].map(model_row))
    matrix = picked.pivot_table(index="row", columns="testset", values="value", aggfunc="mean")
    rows = ordered_models(list(matrix.index), model_order)
    return matrix.loc[rows].sort_index(axis=1) * 100.0


def plot_per_dataset(per_dataset_csv: Path, model_order: list[str], out_png: Path) -> None:
    """Heat map of heatmap_matrix with each cell's value written in it."""
    plt = _pyplot()
    matrix = heatmap_matrix(pd.read_csv(per_dataset_csv), model_order)
    if matrix.empty:
        raise ValueError(f"{per_dataset_csv}: no em_constrained/judge figures to plot")
    fig, ax = plt.subplots(
        figsize=(max(6.0, 0.9 * matrix.shape[1] + 2), max(3.0, 0.45 * matrix.shape[0] + 1.5))
    )
    image = ax.imshow(matrix.to_numpy(float), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(np.arange(matrix.shape[1]), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(np.arange(matrix.shape[0]), matrix.index)
    for (i, j), value in np.ndenumerate(matrix.to_numpy(float)):
        if np.isfinite(value):
            colour = "white" if value < 60 else "black"
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, label="EM % / judge × 100")
    ax.set_title("Per test set: constrained EM (MCQ/MCQU) and judge score (open questions)")
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=150)
    plt.close(fig)
    log.info("wrote %s (%d models x %d test sets)", out_png, *matrix.shape)


def model_length_summary(item_files: list[Path], model_order: list[str]) -> pd.DataFrame:
    """Per Table 1 row: mean judge score and mean answer length over its open-question items
    (seed-averaged), the model-level view of the verbosity the paper notes for the base model."""
    rows = []
    items = load_items(item_files)
    for row in ordered_models(list(items), model_order):
        oeq = items[row][items[row]["task"] == "oeq"]
        if len(oeq):
            judge, length = float(oeq["judge"].mean()), float(oeq["length_chars"].mean())
            rows.append({"model": row, "judge": judge, "length_chars": length, "n": len(oeq)})
    return pd.DataFrame(rows, columns=["model", "judge", "length_chars", "n"])


def _annotated_panel(ax: Any, frame: pd.DataFrame, selected: str) -> None:
    jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(frame))
    for label, colour, name in ((1.0, "tab:green", "physician: Oui"),
                                (0.0, "tab:red", "physician: Non")):  # fmt: skip
        mask = frame["human"].to_numpy(float) == label
        ax.scatter(frame.loc[mask, "length_chars"], frame.loc[mask, "judge"] + jitter[mask],
                   s=18, alpha=0.7, color=colour, label=name)  # fmt: skip
    ax.set_xscale("symlog", linthresh=100)
    ax.set_yticks([0, 1], ["0 (not equivalent)", "1 (equivalent)"])
    ax.set_ylim(-0.4, 1.4)  # both verdict levels stay visible even when the judge is constant
    ax.set_xlabel("candidate answer length (characters)")
    ax.set_ylabel(f"judge {selected} verdict")
    ax.legend(loc="center right")
    ax.set_title("Annotated pairs: verdict vs length")


def _models_panel(ax: Any, summary: pd.DataFrame) -> None:
    ax.scatter(summary["length_chars"], summary["judge"], color="tab:purple")
    for row in summary.itertuples(index=False):
        ax.annotate(row.model, (row.length_chars, row.judge), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)  # fmt: skip
    ax.set_xlabel("mean answer length on open test questions (characters)")
    ax.set_ylabel("mean judge score")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("Models: judge score vs answer length")


def plot_judge_length(
    item_scores_csv: Path,
    selection_json: Path,
    model_item_files: list[Path],
    model_order: list[str],
    out_png: Path,
    input_manifests: list[Path] | None = None,
) -> None:
    """Left: the selected judge's verdicts (jittered) on the annotated pairs against answer
    length, coloured by the physician label. Right: each model's mean judge score against its
    mean answer length on the open-question test sets (item files first checked against
    `input_manifests`, score's; the rule gives them)."""
    if input_manifests is not None:
        check_inputs(model_item_files, input_manifests, "plot_judge_length")
    plt = _pyplot()
    frame = pd.read_csv(item_scores_csv)
    selected = json.loads(Path(selection_json).read_text(encoding="utf-8"))["selected"]
    if "judge" not in frame or frame.empty:
        raise ValueError(f"{item_scores_csv}: no judge column or no items; rerun metaeval")
    summary = model_length_summary(model_item_files, model_order)
    fig, axes = plt.subplots(1, 2, figsize=(12.0, 4.2))
    _annotated_panel(axes[0], frame, selected)
    _models_panel(axes[1], summary)
    fig.suptitle("Verbosity: judge verdicts against answer length")
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=150)
    plt.close(fig)
    log.info("wrote %s (%d annotated items, %d models)", out_png, len(frame), len(summary))
