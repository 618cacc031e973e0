"""Meta-evaluation: how well the judge and the automatic metrics agree with physician labels.

Human label: ``equivalence`` "Oui" -> 1, "Non" -> 0. Scorers: the LLM judge (unparsable -> 0)
and per-item BLEU (sentence, effective order), chrF, ROUGE-L and BERTScore F1. For each scorer:
Pearson, Spearman and Kendall correlations with the labels, their p-values and percentile
bootstrap 95% intervals. Verbosity: each scorer against the candidate's length in characters,
over all items, within each human label, and as a partial correlation controlling for the label.
A correlation with a constant side is undefined: it is written as NaN with a note, not raised.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from medinjection.evaluation import metrics
from medinjection.evaluation.judge import JudgeConfig, judge_messages, run_judge
from medinjection.evaluation.stats import bootstrap_ci

log = logging.getLogger(__name__)

CORRELATIONS: dict[str, Callable[..., Any]] = {
    "pearson": scipy_stats.pearsonr,
    "spearman": scipy_stats.spearmanr,
    "kendall": scipy_stats.kendalltau,
}
SCORERS: tuple[str, ...] = ("judge", "bleu", "chrf", "rougeL", "bertscore_f1")
HUMAN_LABELS: dict[str, float] = {"Oui": 1.0, "Non": 0.0}


def load_annotations(path: Path, candidate_field: str) -> list[dict[str, Any]]:
    """Annotation items (JSONL or JSON list), checked for the fields the meta-evaluation needs."""
    text = Path(path).read_text(encoding="utf-8").strip()
    items = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    needed = ("id", "Question", "verite_terrain", candidate_field, "equivalence")
    for item in items:
        missing = [name for name in needed if name not in item]
        if missing:
            raise KeyError(
                f"{path}: item {item.get('id')!r} lacks {missing} "
                f"(check metaeval.candidate_field; fields: {sorted(item)})"
            )
        if item["equivalence"] not in HUMAN_LABELS:
            raise ValueError(
                f"{path}: item {item['id']!r} equivalence "
                f"{item['equivalence']!r} is not one of {sorted(HUMAN_LABELS)}"
            )
    return items


def item_scores(
    items: list[dict[str, Any]],
    candidate_field: str,
    judge: JudgeConfig,
    model_dir: Path | None,
    bert: metrics.BertScoreConfig,
) -> pd.DataFrame:
    """One row per item: id, human label, candidate length, judge verdict and metric scores."""
    questions = [str(item["Question"]) for item in items]
    hyps = [str(item[candidate_field] or "") for item in items]
    refs = [str(item["verite_terrain"] or "") for item in items]
    verdicts = run_judge(
        [judge_messages(q, h, r) for q, h, r in zip(questions, hyps, refs, strict=True)],
        judge,
        model_dir,
    )
    frame = pd.DataFrame({
        "id": [str(item["id"]) for item in items],
        "human": [HUMAN_LABELS[item["equivalence"]] for item in items],
        "length_chars": [len(h) for h in hyps],
        "judge": [0.0 if score is None else score for score, _ in verdicts],
        "judge_parsed": [score is not None for score, _ in verdicts],
        "judge_raw": [raw for _, raw in verdicts],
        "bleu": metrics.sentence_bleu(hyps, refs),
        "chrf": metrics.sentence_chrf(hyps, refs),
        "rougeL": metrics.rouge_per_item(hyps, refs)["rougeL"],
        "bertscore_f1": metrics.bertscore_f1(hyps, refs, bert),
    })  # fmt: skip
    return frame


def _corr(name: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value); NaN when a side is constant or there are fewer than 3 items."""
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return (float("nan"), float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CORRELATIONS[name](x, y)
    return (float(result[0]), float(result[1]))


def correlation_row(x: np.ndarray, y: np.ndarray, boot: dict) -> dict[str, Any]:
    """Pearson/Spearman/Kendall of x with y, p-values, bootstrap intervals, n and a note."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    row: dict[str, Any] = {}
    index = np.arange(x.size)
    for name in CORRELATIONS:
        row[name], row[f"{name}_p"] = _corr(name, x, y)

        def stat(idx: np.ndarray, name: str = name) -> float:
            picked = idx.astype(int)
            return _corr(name, x[picked], y[picked])[0]

        row[f"{name}_low"], row[f"{name}_high"] = bootstrap_ci(
            index, int(boot["samples"]), int(boot["seed"]), stat=stat
        )
    row["n"] = int(x.size)
    notes = []
    if x.size and np.ptp(x) == 0:
        notes.append("constant scorer output: correlation undefined")
    if y.size and np.ptp(y) == 0:
        notes.append("constant reference: correlation undefined")
    if x.size < 3:
        notes.append("fewer than 3 items")
    row["note"] = "; ".join(notes)
    return row


def _residuals(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Values minus their group mean (regression on a categorical control)."""
    out = values.astype(float).copy()
    for group in np.unique(groups):
        mask = groups == group
        out[mask] -= out[mask].mean()
    return out


def _partial_row(
    score: np.ndarray, length: np.ndarray, human: np.ndarray, boot: dict
) -> dict[str, Any]:
    """Partial correlations controlling for the human label: Pearson on residuals, Spearman on
    rank residuals; Kendall has no standard partial form here and is left NaN."""
    row = correlation_row(_residuals(score, human), _residuals(length, human), boot)
    ranked = correlation_row(
        _residuals(scipy_stats.rankdata(score), human),
        _residuals(scipy_stats.rankdata(length), human),
        boot,
    )
    for suffix in ("", "_p", "_low", "_high"):
        row[f"spearman{suffix}"] = ranked[f"pearson{suffix}"]
        row[f"kendall{suffix}"] = float("nan")
    row["note"] = "; ".join(filter(None, [row["note"], "partial: residuals on human label"]))
    return row


def verbosity_rows(frame: pd.DataFrame, boot: dict) -> list[dict[str, Any]]:
    """Each scorer against candidate length: overall, per human label, and partial on the label."""
    rows: list[dict[str, Any]] = []
    length = frame["length_chars"].to_numpy(float)
    human = frame["human"].to_numpy(float)
    for scorer in SCORERS:
        score = frame[scorer].to_numpy(float)
        scopes = {
            "all": np.ones(len(frame), bool),
            "human_oui": human == 1.0,
            "human_non": human == 0.0,
        }
        for scope, mask in scopes.items():
            rows.append(
                {
                    "scorer": scorer,
                    "scope": scope,
                    **correlation_row(score[mask], length[mask], boot),
                }
            )
        rows.append(
            {
                "scorer": scorer,
                "scope": "partial_given_human",
                **_partial_row(score, length, human, boot),
            }
        )
    return rows


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def run_metaeval(
    annotations: Path,
    candidate_field: str,
    judge: dict,
    model_dir: Path | None,
    bertscore: dict,
    bootstrap: dict,
    out_correlations: Path,
    out_verbosity: Path,
    out_scores: Path,
) -> None:
    """Correlate judge and metric scores with physician labels; write the three tables."""
    items = load_annotations(Path(annotations), candidate_field)
    log.info("meta-evaluation on %d annotated items (%s)", len(items), annotations)
    frame = item_scores(
        items,
        candidate_field,
        JudgeConfig.from_dict(dict(judge)),
        model_dir,
        metrics.BertScoreConfig.from_dict(dict(bertscore)),
    )
    human = frame["human"].to_numpy(float)
    rows = [
        {"scorer": s, **correlation_row(frame[s].to_numpy(float), human, bootstrap)}
        for s in SCORERS
    ]
    unparsed = int((~frame["judge_parsed"]).sum())
    if unparsed:  # rows[0] is the judge (SCORERS order)
        rows[0]["note"] = "; ".join(filter(None, [rows[0]["note"], f"{unparsed} unparsable as 0"]))
    correlations = pd.DataFrame(rows)
    _write_table(correlations, Path(out_correlations))
    _write_table(pd.DataFrame(verbosity_rows(frame, bootstrap)), Path(out_verbosity))
    _write_table(frame, Path(out_scores))
    log.info(
        "correlations with physicians:\n%s",
        correlations[["scorer", "pearson", "spearman", "kendall", "n", "note"]],
    )
