"""Item and corpus metrics: exact match, Hamming, BLEU/chrF, French-safe ROUGE, BERTScore.

Every score is a fraction in [0, 1] (sacrebleu's 0-100 figures are divided by 100).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")
ROUGE_TOKENIZER_NAME = "nfc-lower-unicode-words"


def exact_match(gold: Sequence[str], pred: Sequence[str] | None) -> float:
    """1.0 when the predicted letter set equals the gold set; an invalid prediction scores 0."""
    if pred is None:
        return 0.0
    return 1.0 if set(gold) == set(pred) else 0.0


def hamming(gold: Sequence[str], pred: Sequence[str] | None) -> float:
    """|gold ∩ pred| / |gold ∪ pred| (1.0 when both are empty); an invalid prediction scores 0."""
    if pred is None:
        return 0.0
    gold_set, pred_set = set(gold), set(pred)
    if not gold_set and not pred_set:
        return 1.0
    return len(gold_set & pred_set) / len(gold_set | pred_set)


def _unit(score: float) -> float:
    """A sacrebleu 0-100 score as a fraction, clipped against float noise (100.00000000000004)."""
    return min(1.0, max(0.0, score / 100.0))


@dataclass(frozen=True)
class CorpusScore:
    """A corpus-level score with the sacrebleu signature that produced it."""

    value: float
    signature: str


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str]) -> CorpusScore:
    """Corpus BLEU (sacrebleu defaults: 13a, exp smoothing, no effective order) as a fraction."""
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    score = metric.corpus_score(list(hyps), [list(refs)])
    return CorpusScore(_unit(score.score), str(metric.get_signature()))


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str]) -> CorpusScore:
    """Corpus chrF (sacrebleu defaults: char order 6, no word n-grams) as a fraction."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    score = metric.corpus_score(list(hyps), [list(refs)])
    return CorpusScore(_unit(score.score), str(metric.get_signature()))


BLEU_METRIC = "bleu"
CHRF_METRIC = "chrf"


def _sacrebleu_metric(name: str) -> Any:
    from sacrebleu.metrics import BLEU, CHRF

    factories = {BLEU_METRIC: BLEU, CHRF_METRIC: CHRF}
    if name not in factories:
        raise KeyError(f"corpus metric {name!r} unknown; valid: {sorted(factories)}")
    return factories[name]()


def corpus_stats(name: str, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """Per-item sufficient statistics of corpus BLEU/chrF (n-gram matches and totals, lengths).

    Summing rows over any subset of items and calling ``corpus_from_stats`` gives that subset's
    corpus score, which is how sacrebleu's own paired bootstrap resamples (sacrebleu 2.6 API).
    """
    metric = _sacrebleu_metric(name)
    return np.asarray(metric._extract_corpus_statistics(list(hyps), [list(refs)]), dtype=float)


def corpus_from_stats(name: str, summed: np.ndarray) -> float:
    """Corpus score (fraction) from summed sufficient statistics."""
    return corpus_scorer(name)(summed)


def corpus_scorer(name: str) -> Callable[[np.ndarray], float]:
    """Summed sufficient statistics -> corpus score (fraction), one sacrebleu object reused
    (the resampling tests call it once per replicate)."""
    metric = _sacrebleu_metric(name)

    def score(summed: np.ndarray) -> float:
        stats = np.asarray(summed, dtype=float).tolist()
        return _unit(metric._compute_score_from_stats(stats).score)

    return score


def corpus_bootstrap_ci(
    name: str, stats: np.ndarray, n_samples: int, seed: int
) -> tuple[float, float]:
    """Percentile 95% interval of a corpus score over item resamples of its statistics."""
    rng = np.random.default_rng(seed)
    metric = _sacrebleu_metric(name)
    values: list[float] = []
    for _ in range(n_samples):
        summed = stats[rng.integers(0, len(stats), size=len(stats))].sum(axis=0)
        values.append(_unit(metric._compute_score_from_stats(summed.tolist()).score))
    interval: np.ndarray = np.percentile(values, [2.5, 97.5])
    return float(interval[0]), float(interval[1])


def sentence_bleu(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """Per-item BLEU, effective order (meta-evaluation only; the mean is not corpus BLEU)."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(effective_order=True)
    return [_unit(metric.sentence_score(h, [r]).score) for h, r in zip(hyps, refs, strict=True)]


def sentence_chrf(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """Per-item chrF as fractions."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return [_unit(metric.sentence_score(h, [r]).score) for h, r in zip(hyps, refs, strict=True)]


class FrenchTokenizer:
    """ROUGE tokenizer that keeps accented words whole: NFC, lower-case, Unicode ``\\w+`` runs.

    rouge-score's default tokenizer drops every character outside [a-z0-9], so "hépatite" would
    become "h" + "patite"; this object replaces it (no stemming: Porter is English-only).
    """

    def tokenize(self, text: str) -> list[str]:
        """Word tokens of a text."""
        return re.findall(r"\w+", unicodedata.normalize("NFC", text or "").lower())


def rouge_per_item(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, list[float]]:
    """Per-item ROUGE-1/2/L F-measures with the French-safe tokenizer."""
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(list(ROUGE_TYPES), tokenizer=FrenchTokenizer())
    out: dict[str, list[float]] = {name: [] for name in ROUGE_TYPES}
    for hyp, ref in zip(hyps, refs, strict=True):
        scores = scorer.score(ref, hyp)  # rouge-score's argument order is (target, prediction)
        for name in ROUGE_TYPES:
            out[name].append(float(scores[name].fmeasure))
    return out


def bertscore_f1(
    hyps: Sequence[str],
    refs: Sequence[str],
    settings: Mapping[str, Any],
    batch_size: int = 32,
    device: str | None = None,
) -> list[float]:
    """Per-item BERTScore F1; pairs with an empty side score 0 (bert-score crashes on them).

    `settings`: the keyword arguments of bert_score.score with the backbone already resolved to a
    local directory (`medinjection.modeling.bertscore_model.bertscore_settings`). `device`: the
    torch device ("cuda", "cpu"; `bertscore_model.bertscore_device` picks it from the job's
    GPUs); None leaves bert-score's own choice (cuda when torch sees one, else cpu)."""
    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise ValueError(f"bertscore: {len(hyps)} candidates but {len(refs)} references")
    scores = [0.0] * len(hyps)
    keep = [i for i, (h, r) in enumerate(zip(hyps, refs, strict=True)) if h.strip() and r.strip()]
    if len(keep) < len(hyps):
        empty = len(hyps) - len(keep)
        log.info("bertscore: %d of %d pairs have an empty side, scored 0", empty, len(hyps))
    if not keep:
        return scores
    import bert_score

    _, _, f1 = bert_score.score(
        [hyps[i] for i in keep],
        [refs[i] for i in keep],
        batch_size=batch_size,
        device=device,
        **settings,
    )
    for i, value in zip(keep, f1.tolist(), strict=True):
        scores[i] = float(value)
    return scores
