"""Translation quality of the configured model on a parallel EN-FR test file (WMT24-biomed style).

The segments go through the production translation prompt and client (cache, replay, batch); the
hypotheses are scored with corpus-level BLEU and chrF (sacrebleu, default 13a tokenizer, so no
download) and reported beside the paper's figures. COMET runs in its own environment
(medinjection.llm.comet, envs/comet.yaml) on the translations file written here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sacrebleu.metrics import BLEU, CHRF

from medinjection.llm.client import open_client
from medinjection.llm.cost import usage_cost
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


def translation_quality(
    test_file: Path, scores_path: Path, translations_path: Path, endpoint: dict, model: str,
    temperature: float, max_tokens: int, mode: str, replay_file: str | None, cache_path: str,
    submit: str = "direct", batch: dict | None = None, price: dict | None = None,
) -> None:  # fmt: skip
    """Translate the test file with the configured model; write translations and BLEU/chrF."""
    if not Path(test_file).is_file():
        raise FileNotFoundError(
            f"translation.quality.test_file {test_file} not found: stage the WMT24 biomedical "
            "EN-FR test set there as JSONL {id, en, fr}, or set translation.quality.enabled: false"
        )
    segments = read_parallel(test_file)
    log.info("translation quality: %d segments of %s with %s", len(segments), test_file, model)
    with open_client(endpoint, mode, replay_file, cache_path, submit, batch) as client:
        rows = translate_segments(segments, client, model, temperature, max_tokens)
        usage = client.usage.as_dict()
    translations_path.parent.mkdir(parents=True, exist_ok=True)
    with translations_path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    failed = [row["id"] for row in rows if row["error"]]
    if failed:
        log.warning("translation quality: %d unusable replies scored as empty: %s",
                    len(failed), failed[:10])  # fmt: skip
    scores = {
        "model": model,
        "test_file": str(test_file),
        "segments": len(rows),
        "failed": failed,
        **corpus_scores([r["mt"] for r in rows], [r["fr"] for r in rows]),
        "paper": PAPER_FIGURES,
        "usage": usage,
        "cost": usage_cost(usage, price, submit),
    }
    scores_path.write_text(json.dumps(scores, ensure_ascii=False, indent=2) + "\n")
    log.info("translation quality: BLEU %.2f, chrF %.2f", scores["bleu"], scores["chrf"])


def quality_report(scores_path: Path, comet_path: Path | None, out_path: Path) -> None:
    """Markdown table: this run's BLEU/chrF/COMET beside the paper's figures."""
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    comet = None
    if comet_path is not None:
        comet = json.loads(Path(comet_path).read_text(encoding="utf-8"))["system_score"]
    lines = [
        f"Translation quality on {scores['test_file']} ({scores['segments']} segments, "
        f"{len(scores['failed'])} unusable replies scored as empty).",
        "",
        "| system | BLEU | chrF | COMET |",
        "|---|---:|---:|---:|",
        f"| {scores['model']} (this run) | {scores['bleu']:.2f} | {scores['chrf']:.2f} | "
        + (f"{comet:.4f} |" if comet is not None else "not run |"),
    ]
    for system, figures in scores["paper"].items():
        lines.append(f"| {system} (paper) | {figures['bleu']:.2f} | - | {figures['comet']:.4f} |")
    lines += ["", f"BLEU: `{scores['bleu_signature']}`; chrF: `{scores['chrf_signature']}`"]
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
