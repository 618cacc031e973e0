"""Meta-evaluation: how well candidate judges and automatic metrics agree with physician labels.

Human label: ``equivalence`` "Oui" -> 1, "Non" -> 0. Scorers: every candidate LLM judge
(``judge:<name>``, unparsable -> 0) and per-item BLEU (sentence, effective order), chrF,
ROUGE-1/2/L and BERTScore F1. For each scorer: Pearson, Spearman and Kendall correlations with the
labels, their p-values and percentile bootstrap 95% intervals. The judge used on the test sets is
then chosen (``judge_selection``: fixed or ``auto`` = best correlation) and its verdicts are also
written as column ``judge``.

Verbosity: each scorer against the candidate's length in characters, over all items, within each
human label, and as a partial correlation controlling for the label (``verbosity.csv``); and a
linear regression score ~ 1 + human + length (per 1,000 characters) whose length coefficient is
the verbosity effect at a fixed human verdict (``verbosity_regression.csv``: OLS estimate, t-test
p-value, bootstrap 95% interval).

A correlation with a constant side is undefined: it is written as NaN with a note, not raised.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from medinjection.evaluation import metrics
from medinjection.evaluation.judge import JUDGE_SYSTEM_PROMPT, JudgeFn, judge_messages
from medinjection.evaluation.judge_selection import judge_scorer
from medinjection.evaluation.stats import bootstrap_ci, percentile_interval

log = logging.getLogger(__name__)

CORRELATIONS: dict[str, Callable[..., Any]] = {
    "pearson": scipy_stats.pearsonr,
    "spearman": scipy_stats.spearmanr,
    "kendall": scipy_stats.kendalltau,
}
METRIC_SCORERS: tuple[str, ...] = ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "bertscore_f1")
HUMAN_LABELS: dict[str, float] = {"Oui": 1.0, "Non": 0.0}
LENGTH_UNIT_CHARS = 1000.0


def item_scores(
    items: list[dict[str, Any]],
    candidate_field: str,
    judges: Mapping[str, JudgeFn],
    bert: Mapping[str, Any],
    system_prompt: str = JUDGE_SYSTEM_PROMPT,
    bert_batch_size: int = 32,
) -> pd.DataFrame:
    """One row per item: id, human label, candidate length, each judge's verdict, metric scores
    (`judges`: each candidate's judge, run once on all items; `bert`: the resolved BERTScore
    arguments, `modeling.bertscore_model.bertscore_settings`)."""
    questions = [str(item["Question"]) for item in items]
    hyps = [str(item[candidate_field] or "") for item in items]
    refs = [str(item["verite_terrain"] or "") for item in items]
    triples = zip(questions, hyps, refs, strict=True)
    messages = [judge_messages(q, h, r, system_prompt) for q, h, r in triples]
    frame = pd.DataFrame({
        "id": [str(item["id"]) for item in items],
        "human": [HUMAN_LABELS[item["equivalence"]] for item in items],
        "length_chars": [len(h) for h in hyps],
    })  # fmt: skip
    for name, judge in judges.items():
        verdicts = judge(messages)
        column = judge_scorer(name)
        frame[column] = [0.0 if score is None else score for score, _ in verdicts]
        frame[f"{column}_parsed"] = [score is not None for score, _ in verdicts]
        frame[f"{column}_raw"] = [raw for _, raw in verdicts]
    frame["bleu"] = metrics.sentence_bleu(hyps, refs)
    frame["chrf"] = metrics.sentence_chrf(hyps, refs)
    for name, values in metrics.rouge_per_item(hyps, refs).items():
        frame[name] = values
    frame["bertscore_f1"] = metrics.bertscore_f1(hyps, refs, bert, bert_batch_size)
    return frame


def _corr(name: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value); NaN when a side is constant or there are fewer than 3 items."""
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return (float("nan"), float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CORRELATIONS[name](x, y)
    return (float(result[0]), float(result[1]))


def _corr_replicates(
    name: str, x: np.ndarray, y: np.ndarray, samples: int, seed: int
) -> np.ndarray:
    """The statistic of `name` on `samples` bootstrap resamples of the pairs (x, y), all at once.

    The resamples are the ones bootstrap_ci draws (one (samples, n) index matrix from
    default_rng(seed)); a resample with a constant side, or fewer than 3 items, gives NaN as in
    _corr. Pearson is scipy's own along an axis; Spearman is scipy's steps (average ranks, then
    np.corrcoef, one resample at a time: its intervals stay bit-identical); Kendall is tau-b from
    the pair signs (integer counts, as scipy's)."""
    if x.size == 0:
        return np.full(samples, np.nan)
    index = np.random.default_rng(seed).integers(0, x.size, size=(samples, x.size))
    xs, ys = x[index], y[index]
    out = np.full(samples, np.nan)
    if x.size < 3:
        return out
    ok = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
    if not ok.any():
        return out
    xs, ys = xs[ok], ys[ok]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "pearson":
            out[ok] = scipy_stats.pearsonr(xs, ys, axis=1)[0]
        elif name == "spearman":  # scipy's own steps: average ranks, then np.corrcoef per pair
            rx = scipy_stats.rankdata(xs, axis=1)
            ry = scipy_stats.rankdata(ys, axis=1)
            out[ok] = [
                np.corrcoef(np.column_stack((a, b)), rowvar=False)[1, 0]
                for a, b in zip(rx, ry, strict=True)
            ]
        elif name == "kendall":
            out[ok] = _kendall_tau_b_rows(xs, ys)
        else:
            raise KeyError(f"unknown correlation {name!r}; valid: {sorted(CORRELATIONS)}")
    return out


KENDALL_CELLS = 4_000_000  # sign-matrix cells per chunk (32 MB per int64 array), whatever n


def _kendall_tau_b_rows(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair (no constant row): (concordant - discordant) over
    sqrt(pairs untied in x) * sqrt(pairs untied in y), pairs i < j; scipy's formula and order of
    operations. Rows go in chunks of at most KENDALL_CELLS pair cells (n = 100: 400 rows)."""
    n = xs.shape[1]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    total = n * (n - 1) // 2
    chunk = max(1, KENDALL_CELLS // (n * n))
    out = np.empty(xs.shape[0])
    for start in range(0, xs.shape[0], chunk):
        x, y = xs[start : start + chunk], ys[start : start + chunk]
        sx = np.sign(x[:, :, None] - x[:, None, :])[:, upper].astype(np.int64)
        sy = np.sign(y[:, :, None] - y[:, None, :])[:, upper].astype(np.int64)
        con_minus_dis = (sx * sy).sum(axis=1)
        xtie = (sx == 0).sum(axis=1)
        ytie = (sy == 0).sum(axis=1)
        out[start : start + chunk] = con_minus_dis / np.sqrt(total - xtie) / np.sqrt(total - ytie)
    return np.clip(out, -1.0, 1.0)


def correlation_row(x: np.ndarray, y: np.ndarray, boot: dict) -> dict[str, Any]:
    """Pearson/Spearman/Kendall of x with y, p-values, bootstrap intervals, n and a note."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    row: dict[str, Any] = {}
    for name in CORRELATIONS:
        row[name], row[f"{name}_p"] = _corr(name, x, y)

        replicates = _corr_replicates(name, x, y, int(boot["samples"]), int(boot["seed"]))
        row[f"{name}_low"], row[f"{name}_high"] = percentile_interval(replicates)
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
    out: np.ndarray = values.astype(float).copy()
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


def verbosity_rows(frame: pd.DataFrame, scorers: list[str], boot: dict) -> list[dict[str, Any]]:
    """Each scorer against candidate length: overall, per human label, and partial on the label."""
    rows: list[dict[str, Any]] = []
    length = frame["length_chars"].to_numpy(float)
    human = frame["human"].to_numpy(float)
    for scorer in scorers:
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


def _ols(y: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """OLS coefficients and their standard errors (None when the fit is exact or singular)."""
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    dof = y.size - design.shape[1]
    if rank < design.shape[1] or dof <= 0:
        return coef, None
    resid = y - design @ coef
    sigma2 = float(resid @ resid) / dof
    if sigma2 <= 1e-20 * max(1.0, float(y @ y) / y.size):  # exact fit up to rounding
        return coef, None
    return coef, np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))


def regression_row(
    score: np.ndarray, length: np.ndarray, human: np.ndarray, boot: dict
) -> dict[str, Any]:
    """score ~ 1 + human + length/1000: the length coefficient (verbosity at a fixed label)."""
    kchars = np.asarray(length, float) / LENGTH_UNIT_CHARS
    y = np.asarray(score, float)
    design = np.column_stack([np.ones_like(y), np.asarray(human, float), kchars])
    coef, se = _ols(y, design) if y.size else (np.full(3, np.nan), None)
    row: dict[str, Any] = {
        "coef_length_per_1k_chars": float(coef[2]), "coef_human": float(coef[1]),
        "intercept": float(coef[0]), "n": int(y.size),
    }  # fmt: skip
    note = []
    if se is None or not np.isfinite(se[2]) or se[2] == 0:
        row["se_length"], row["p_length"] = float("nan"), float("nan")
        note.append("exact or singular fit (constant score or collinear length): no p-value")
    else:
        t = coef[2] / se[2]
        row["se_length"] = float(se[2])
        row["p_length"] = float(2 * scipy_stats.t.sf(abs(t), y.size - 3))

    def stat(idx: np.ndarray) -> float:
        picked: np.ndarray = idx.astype(int)
        return float(np.linalg.lstsq(design[picked], y[picked], rcond=None)[0][2])

    row["coef_length_low"], row["coef_length_high"] = bootstrap_ci(
        np.arange(y.size), int(boot["samples"]), int(boot["seed"]), stat=stat
    )
    row["note"] = "; ".join(note)
    return row


def regression_rows(frame: pd.DataFrame, scorers: list[str], boot: dict) -> list[dict[str, Any]]:
    """The verbosity regression of every scorer."""
    length = frame["length_chars"].to_numpy(float)
    human = frame["human"].to_numpy(float)
    return [
        {"scorer": s, **regression_row(frame[s].to_numpy(float), length, human, boot)}
        for s in scorers
    ]


def correlation_table(frame: pd.DataFrame, scorers: list[str], boot: dict) -> pd.DataFrame:
    """Correlation of every scorer with the human labels, noting unparsable judge verdicts."""
    human = frame["human"].to_numpy(float)
    rows = []
    for scorer in scorers:
        row = {"scorer": scorer, **correlation_row(frame[scorer].to_numpy(float), human, boot)}
        parsed = f"{scorer}_parsed"
        if parsed in frame and (~frame[parsed]).any():
            extra = f"{int((~frame[parsed]).sum())} unparsable as 0"
            row["note"] = "; ".join(filter(None, [row["note"], extra]))
        rows.append(row)
    return pd.DataFrame(rows)
