"""Score one model: per-test-set metrics and the Table 1 aggregates, with bootstrap intervals.

Aggregates (Table 1): ``em_mcq`` and ``em_mcqu`` are micro means of constrained-decoding exact
match over all items of that task (every test set pooled); ``em`` is the mean of the two task
figures (macro over tasks, micro within a task), the paper's "mean of MCQ and MCQU"; when one task
has no test set, ``em`` is the other one and ``em_definition`` says so. ``judge`` is the micro mean
of judge scores over all open-question items, unparsable verdicts counting 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.evaluation import metrics
from medinjection.evaluation.parsing import normalize_gold, parse_letters, split_letters
from medinjection.evaluation.stats import bootstrap_ci, macro_bootstrap_ci

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("id", "task", "letters", "gold", "greedy_output", "constrained_output")
ITEM_METRICS: tuple[str, ...] = (
    "em_greedy", "em_constrained", "hamming_greedy", "hamming_constrained",
    "rouge1", "rouge2", "rougeL", "bertscore_f1", "judge", "length_chars",
)  # fmt: skip
# Per-item sacrebleu sufficient statistics of corpus BLEU/chrF (open questions; null otherwise):
# summed over any set of items they give that set's corpus score (the significance tests).
ITEM_STATS: dict[str, str] = {"bleu_stats": metrics.BLEU_METRIC, "chrf_stats": metrics.CHRF_METRIC}
ITEM_SCHEMA = pa.schema(
    [("model", pa.string()), ("testset", pa.string()), ("task", pa.string()),
     ("id", pa.string())] + [(name, pa.float64()) for name in ITEM_METRICS]
    + [(name, pa.list_(pa.float64())) for name in ITEM_STATS]
)  # fmt: skip


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _with_ci(out: dict[str, Any], name: str, values: Sequence[float], boot: dict) -> None:
    """Set out[name], out[name_low], out[name_high] (None when there are no values)."""
    out[name] = _mean(values)
    low, high = bootstrap_ci(values, int(boot["samples"]), int(boot["seed"]))
    out[f"{name}_low"], out[f"{name}_high"] = (low, high) if len(values) else (None, None)


def score_mcq(
    rows: list[dict[str, Any]], task: str, boot: dict
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Metrics of one MCQ/MCQU test set and its item-level scores (ITEM_COLUMNS names)."""
    single = task == "mcqu"
    per: dict[str, list[float]] = {
        k: [] for k in ("em_g", "em_c", "ham_g", "ham_c", "bad_g", "bad_c")
    }
    for row in rows:
        letters, gold = split_letters(row["letters"] or ""), normalize_gold(row["gold"] or "")
        greedy = parse_letters(row["greedy_output"], letters, single)
        constrained = parse_letters(row["constrained_output"], letters, single)
        per["em_g"].append(metrics.exact_match(gold, greedy))
        per["em_c"].append(metrics.exact_match(gold, constrained))
        per["ham_g"].append(metrics.hamming(gold, greedy))
        per["ham_c"].append(metrics.hamming(gold, constrained))
        per["bad_g"].append(float(greedy is None))
        per["bad_c"].append(float(constrained is None))
    out: dict[str, Any] = {"task": task, "n": len(rows)}
    _with_ci(out, "em_greedy", per["em_g"], boot)
    _with_ci(out, "em_constrained", per["em_c"], boot)
    if task == "mcq":  # Hamming only for multi-answer items, as in the official script
        _with_ci(out, "hamming_greedy", per["ham_g"], boot)
        _with_ci(out, "hamming_constrained", per["ham_c"], boot)
    out["invalid_greedy"] = _mean(per["bad_g"])
    out["invalid_constrained"] = _mean(per["bad_c"])
    items = {"em_greedy": per["em_g"], "em_constrained": per["em_c"]}
    if task == "mcq":
        items |= {"hamming_greedy": per["ham_g"], "hamming_constrained": per["ham_c"]}
    return out, items


# How items whose judge request the API refused (content filter, too long) are scored: `zero`
# counts them as not equivalent (and reports their number apart), `fail` stops the score job.
REFUSED_POLICIES: tuple[str, ...] = ("zero", "fail")


def _judge_scores(
    rows: list[dict[str, Any]], judge_file: Path, refused_policy: str
) -> tuple[list[float], int, int]:
    """Judge scores aligned with prediction rows (null -> 0), the unparsable and refused counts."""
    if refused_policy not in REFUSED_POLICIES:
        raise ValueError(f"judge.refused {refused_policy!r}; valid: {list(REFUSED_POLICIES)}")
    table = pq.read_table(judge_file, columns=["id", "score", "error"]).to_pylist()
    judged = {r["id"]: r for r in table}
    missing = [row["id"] for row in rows if row["id"] not in judged]
    if missing:
        raise KeyError(
            f"{judge_file}: no judgment for {len(missing)} prediction(s), first "
            f"{missing[0]!r}; rerun the judge rule for this model"
        )
    found = [judged[row["id"]] for row in rows]
    refused = [r for r in found if r["error"] is not None]
    if refused and refused_policy == "fail":
        raise ValueError(
            f"{judge_file}: the judge's API refused {len(refused)} of {len(found)} requests "
            f"(first {refused[0]['id']!r}: {refused[0]['error']}) and judge.refused is 'fail'; "
            "fix the cause (e.g. content filter, context length) and rerun the judge, or set "
            "judge.refused: zero to count them as not equivalent (reported as judge_refused)"
        )
    scores = [r["score"] for r in found]
    unparsable = sum(r["score"] is None and r["error"] is None for r in found)
    return [0.0 if s is None else float(s) for s in scores], unparsable, len(refused)


def _corpus_with_ci(
    out: dict[str, Any], hyps: list[str], refs: list[str], boot: dict
) -> dict[str, list[list[float]]]:
    """Corpus BLEU and chrF with item-resampling bootstrap intervals; returns the per-item
    sufficient statistics (ITEM_STATS names) the significance tests resample."""
    item_stats: dict[str, list[list[float]]] = {}
    for column, metric in ITEM_STATS.items():
        name = metric  # "bleu" / "chrf": the score-file keys
        if not hyps:
            out[name], out[f"{name}_low"], out[f"{name}_high"] = None, None, None
            item_stats[column] = []
            continue
        stats = metrics.corpus_stats(metric, hyps, refs)
        out[name] = metrics.corpus_from_stats(metric, stats.sum(axis=0))
        out[f"{name}_low"], out[f"{name}_high"] = metrics.corpus_bootstrap_ci(
            metric, stats, int(boot["samples"]), int(boot["seed"])
        )
        item_stats[column] = stats.tolist()
    return item_stats


def score_oeq(
    rows: list[dict[str, Any]],
    judge_file: Path,
    bert: Mapping[str, Any],
    boot: dict,
    refused_policy: str = "zero",
    bert_batch_size: int = 32,
    bert_device: str | None = None,
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Metrics of one open-question test set and its item-level scores (ITEM_COLUMNS names);
    `bert`: the resolved BERTScore arguments (`modeling.bertscore_model.bertscore_settings`),
    computed on `bert_device` (`metrics.bertscore_f1`)."""
    hyps = [row["greedy_output"] or "" for row in rows]
    refs = [row["gold"] or "" for row in rows]
    out: dict[str, Any] = {"task": "oeq", "n": len(rows)}
    item_stats = _corpus_with_ci(out, hyps, refs, boot)
    items = metrics.rouge_per_item(hyps, refs)
    items["bertscore_f1"] = metrics.bertscore_f1(hyps, refs, bert, bert_batch_size, bert_device)
    items["judge"], unparsable, refused = _judge_scores(rows, judge_file, refused_policy)
    for name, values in items.items():
        _with_ci(out, name, values, boot)
    out["bertscore_rescaled"] = bert["rescale_with_baseline"]
    out["judge_unparsable"] = unparsable
    out["judge_refused"] = refused
    out["judge_model"] = _judge_models(judge_file)
    items["length_chars"] = [float(len(h)) for h in hyps]
    return out, items | item_stats


def _judge_models(judge_file: Path) -> str:
    """The judge model(s) named in a judgment file (comma-joined when several)."""
    names = pq.read_table(judge_file, columns=["judge"]).column("judge").to_pylist()
    return ",".join(sorted({str(n) for n in names}))


def aggregate(pools: dict[str, list[float]], boot: dict) -> dict[str, Any]:
    samples, seed = int(boot["samples"]), int(boot["seed"])
    agg: dict[str, Any] = {}
    for task in ("mcq", "mcqu"):
        _with_ci(agg, f"em_{task}", pools[task], boot)
        agg[f"n_{task}"] = len(pools[task])
    present = [t for t in ("mcq", "mcqu") if pools[t]]
    agg["em"] = _mean([agg[f"em_{t}"] for t in present]) if present else None
    low, high = macro_bootstrap_ci([pools[t] for t in present], samples, seed)
    agg["em_low"], agg["em_high"] = (low, high) if present else (None, None)
    agg["em_definition"] = (
        "mean of em_mcq and em_mcqu (constrained decoding, micro within task)"
        if len(present) == 2
        else f"only {present or 'no'} multiple-choice test sets: em = that task's micro mean"
    )
    _with_ci(agg, "judge", pools["oeq"], boot)
    agg["n_oeq"] = len(pools["oeq"])
    return agg


def item_rows(
    model: str, testset: str, task: str, rows: list[dict[str, Any]], items: dict[str, list]
) -> list[dict[str, Any]]:
    """Item-level rows of one test set; metrics that do not apply to its task are null."""
    return [
        {"model": model, "testset": testset, "task": task, "id": str(row["id"]),
         **{name: (items[name][k] if name in items else None)
            for name in (*ITEM_METRICS, *ITEM_STATS)}}
        for k, row in enumerate(rows)
    ]  # fmt: skip
