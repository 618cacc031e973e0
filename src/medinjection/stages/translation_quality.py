"""Rules of workflow/rules/translation_quality.smk: translate the parallel test file and score
BLEU/chrF (medinjection.llm.quality), COMET of those translations, and the report beside the
paper's figures.

translation_comet runs in envs/comet.yaml (unbabel-comet needs transformers<5), which has neither
openai nor transformers 5: this module imports only the standard library at the top, the LLM
client inside translation_quality, comet inside comet_score. The checkpoint must be staged
locally (no download).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from medinjection.settings import BatchSettings, CometSettings, EndpointSettings, PriceSettings

LOG = logging.getLogger(__name__)


def translation_quality(
    test_file: Path, scores_path: Path, translations_path: Path, endpoint: EndpointSettings,
    model: str, temperature: float, max_tokens: int, mode: str, replay_file: str | None,
    cache_path: str, submit: str = "direct", batch: BatchSettings | None = None,
    price: PriceSettings | None = None,
) -> None:  # fmt: skip
    """Translate the test file with the configured model; write translations and BLEU/chrF."""
    # imported here: this module also runs in the COMET environment, which has no openai
    from medinjection.llm.client import open_client
    from medinjection.llm.cost import usage_cost
    from medinjection.llm.quality import (
        PAPER_FIGURES,
        corpus_scores,
        read_parallel,
        translate_segments,
    )

    if not Path(test_file).is_file():
        raise FileNotFoundError(
            f"translation.quality.test_file {test_file} not found: stage the WMT24 biomedical "
            "EN-FR test set there as JSONL {id, en, fr}, or set translation.quality.enabled: false"
        )
    segments = read_parallel(test_file)
    LOG.info("translation quality: %d segments of %s with %s", len(segments), test_file, model)
    batch_keys = batch.to_dict() if batch is not None else None
    server = endpoint.to_dict()
    with open_client(server, mode, replay_file, cache_path, submit, batch_keys) as client:
        rows = translate_segments(segments, client, model, temperature, max_tokens)
        usage = client.usage.as_dict()
    translations_path.parent.mkdir(parents=True, exist_ok=True)
    with translations_path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    failed = [row["id"] for row in rows if row["error"]]
    if failed:
        LOG.warning("translation quality: %d unusable replies scored as empty: %s",
                    len(failed), failed[:10])  # fmt: skip
    scores = {
        "model": model,
        "test_file": str(test_file),
        "segments": len(rows),
        "failed": failed,
        **corpus_scores([r["mt"] for r in rows], [r["fr"] for r in rows]),
        "paper": PAPER_FIGURES,
        "usage": usage,
        "cost": usage_cost(usage, price.to_dict() if price else None, submit),
    }
    scores_path.write_text(json.dumps(scores, ensure_ascii=False, indent=2) + "\n")
    LOG.info("translation quality: BLEU %.2f, chrF %.2f", scores["bleu"], scores["chrf"])


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


def comet_inputs(translations_path: Path) -> list[dict[str, str]]:
    """COMET triples {src, mt, ref} from a translations JSONL ({en, fr, mt} per line)."""
    rows = [json.loads(x) for x in translations_path.read_text(encoding="utf-8").splitlines() if x]
    return [{"src": r["en"], "mt": r["mt"], "ref": r["fr"]} for r in rows]


def comet_score(translations_path: Path, comet: CometSettings, out_path: Path, gpus: int) -> None:
    """System and segment COMET scores of the translations (translation.quality.comet: the
    checkpoint and batch size; `gpus`: the job's, compute.comet.gpus), written as JSON."""
    model_path = Path(comet.model_path)
    if not Path(model_path).is_file():
        raise FileNotFoundError(
            f"COMET checkpoint {model_path} not found (translation.quality.comet.model_path); "
            "stage e.g. Unbabel/wmt22-comet-da and its xlm-roberta-large encoder locally"
        )
    from comet import load_from_checkpoint  # the COMET environment only

    model = load_from_checkpoint(str(model_path), local_files_only=True)
    data = comet_inputs(translations_path)
    LOG.info("COMET: %d segments with %s", len(data), model_path)
    output = model.predict(data, batch_size=comet.batch_size, gpus=gpus)
    result = {
        "model_path": str(model_path),
        "system_score": float(output.system_score),
        "scores": [float(s) for s in output.scores],
    }
    out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
