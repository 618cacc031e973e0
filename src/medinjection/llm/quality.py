"""Translation quality of the configured model on a parallel EN-FR test file (WMT24-biomed style):
the test file, the segments' translation and the corpus scores (the rules are
medinjection.stages.translation_quality).

The segments go through the production translation prompt and client (cache, replay, batch); the
hypotheses are scored with corpus-level BLEU and chrF (sacrebleu, default 13a tokenizer, so no
download) and reported beside the paper's figures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sacrebleu.metrics import BLEU, CHRF

from medinjection.llm.structured import parse_reply
from medinjection.llm.translation import payload_request

log = logging.getLogger(__name__)

# GitHub README of the study, "Translated subset quality" (WMT'24 biomedical EN-FR).
PAPER_FIGURES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"bleu": 51.01, "comet": 0.8751},
    "gemini-2.0-flash": {"bleu": 53.72, "comet": 0.8783},
    "WMT'24 best system": {"bleu": 53.54, "comet": 0.8760},
}


def read_parallel(path: str | Path) -> list[dict[str, str]]:
    """Segments {id, en, fr} of a JSONL test file; a bad line raises naming file and line."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not all(isinstance(row.get(k), str) and row[k].strip() for k in ("id", "en", "fr")):
            raise ValueError(f"{path}:{number}: expected non-empty string fields id, en, fr")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no segments; translation.quality.test_file must list pairs")
    return rows


def translate_segments(
    segments: Sequence[Mapping[str, str]], client: Any, model: str, temperature: float,
    max_tokens: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Each segment with its machine translation `mt` ('' and `error` when unusable)."""
    requests = [payload_request({"text": s["en"]}, model, temperature, max_tokens)
                for s in segments]  # fmt: skip
    out: list[dict[str, Any]] = []
    for segment, result in zip(segments, client.complete_many(requests), strict=True):
        reply, errors = parse_reply(result)
        text = reply.get("text") if reply else None
        if not isinstance(text, str) or not text.strip():
            errors = errors or ["reply has no 'text' string"]
            out.append({**segment, "mt": "", "error": "; ".join(errors)})
        else:
            out.append({**segment, "mt": text.strip(), "error": None})
    return out


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF (sacrebleu defaults) with their signatures."""
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_score = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
