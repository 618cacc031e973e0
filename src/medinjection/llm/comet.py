"""COMET of the translations file, run in envs/comet.yaml (unbabel-comet needs transformers<5).

Imports nothing from the rest of the package but the standard library, so that this environment
needs neither openai nor transformers 5. The checkpoint must be staged locally (no download).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def comet_inputs(translations_path: Path) -> list[dict[str, str]]:
    """COMET triples {src, mt, ref} from a translations JSONL ({en, fr, mt} per line)."""
    rows = [json.loads(x) for x in translations_path.read_text(encoding="utf-8").splitlines() if x]
    return [{"src": r["en"], "mt": r["mt"], "ref": r["fr"]} for r in rows]


def comet_score(
    translations_path: Path, model_path: Path, out_path: Path, batch_size: int, gpus: int
) -> None:
    """System and segment COMET scores of the translations, written as JSON."""
    if not Path(model_path).is_file():
        raise FileNotFoundError(
            f"COMET checkpoint {model_path} not found (translation.quality.comet.model_path); "
            "stage e.g. Unbabel/wmt22-comet-da and its xlm-roberta-large encoder locally"
        )
    from comet import load_from_checkpoint  # the COMET environment only

    model = load_from_checkpoint(str(model_path), local_files_only=True)
    data = comet_inputs(translations_path)
    log.info("COMET: %d segments with %s", len(data), model_path)
    output = model.predict(data, batch_size=batch_size, gpus=gpus)
    result = {
        "model_path": str(model_path),
        "system_score": float(output.system_score),
        "scores": [float(s) for s in output.scores],
    }
    out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
