"""Bar chart of Table 1: EM (percent) and judge score per model, with 95% interval error bars."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def _errors(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Asymmetric error-bar lengths (2 x n) from the low/high columns; missing bounds give 0."""
    value = frame[column].to_numpy(float)
    low = frame[f"{column}_low"].to_numpy(float)
    high = frame[f"{column}_high"].to_numpy(float)
    return np.nan_to_num(np.vstack([value - low, high - value]), nan=0.0).clip(min=0.0)


def plot_table1(table_csv: Path, out_png: Path) -> None:
    """Two panels of bars (EM %, judge 0-1) in Table 1's model order, CIs as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
