"""Which candidate judge scores the open questions: fixed by config, or the best-correlated one.

``judge.select`` is either a candidate name (that judge is used; the meta-evaluation still scores
every candidate) or ``auto``: the candidate whose verdicts correlate best with the physician labels
under ``judge.select_by`` (Pearson by default, the statistic the paper reports), as the authors did
("the judge with the best correlation to the physician's ratings"). Ties go to the candidate listed
first; when no candidate has a defined correlation (e.g. every verdict constant), the first one is
used and the reason says so. The choice is written to ``results/metaeval/judge_selection.json``,
which the judge rule reads in auto mode.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

AUTO = "auto"
SELECTION_STATISTICS: tuple[str, ...] = ("pearson", "spearman", "kendall")


def judge_scorer(name: str) -> str:
    """The scorer name of a candidate judge in the meta-evaluation tables."""
    return f"judge:{name}"


def select_judge(
    correlations: pd.DataFrame, candidates: list[str], select: str, select_by: str
) -> dict[str, Any]:
    """The selection record: chosen candidate, how, and each candidate's correlations."""
    if select_by not in SELECTION_STATISTICS:
        raise KeyError(f"judge.select_by {select_by!r} unknown; valid: {SELECTION_STATISTICS}")
    if not candidates:
        raise ValueError("judge.candidates is empty; configure at least one judge")
    if select != AUTO and select not in candidates:
        raise KeyError(f"judge.select {select!r} is neither 'auto' nor a candidate {candidates}")
    table = correlations.set_index("scorer")
    summary = {}
    for name in candidates:
        row = table.loc[judge_scorer(name)]
        summary[name] = {s: _finite(row[s]) for s in SELECTION_STATISTICS} | {
            f"{select_by}_low": _finite(row[f"{select_by}_low"]),
            f"{select_by}_high": _finite(row[f"{select_by}_high"]),
            "n": int(row["n"]),
        }
    if select != AUTO:
        chosen, reason = select, f"fixed by judge.select = {select!r}"
    else:
        defined = [n for n in candidates if summary[n][select_by] is not None]
        if defined:
            chosen = max(defined, key=lambda n: (summary[n][select_by], -candidates.index(n)))
            reason = f"highest {select_by} correlation with the physician labels"
        else:
            chosen = candidates[0]
            reason = (
                f"no candidate has a defined {select_by} correlation (constant verdicts or "
                "labels); fell back to the first candidate"
            )
    return {"mode": AUTO if select == AUTO else "configured", "select_by": select_by,
            "selected": chosen, "reason": reason, "candidates": summary}  # fmt: skip


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def write_selection(selection: dict[str, Any], path: Path) -> None:
    """Write the selection record as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(selection, indent=2) + "\n", encoding="utf-8")
    log.info("judge selection: %s (%s) -> %s", selection["selected"], selection["reason"], path)
