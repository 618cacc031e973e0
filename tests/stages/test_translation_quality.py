"""The translation_quality rules: BLEU/chrF on the demo parallel file through the recorded replies,
the report, COMET inputs, and the COMET script's imports (its environment has no openai)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sacrebleu.metrics import BLEU, CHRF

from medinjection.settings import EndpointSettings, PriceSettings
from medinjection.stages.translation_quality import (
    comet_inputs,
    quality_report,
    translation_quality,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
PRICE = {"input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.60, "batch_discount": 0.5}


def test_demo_quality_through_recorded_replies(tmp_path: Path) -> None:
    tr = DEMO["translation"]
    scores, translations = tmp_path / "scores.json", tmp_path / "translations.jsonl"
    translation_quality(
        ROOT / tr["quality"]["test_file"], scores, translations,
        EndpointSettings.from_dict(DEMO["llm"]["endpoints"][tr["endpoint"]]), tr["model"],
        tr["temperature"], tr["max_tokens"], "replay", str(ROOT / DEMO["llm"]["replay_file"]),
        str(tmp_path / "c.sqlite"), price=PriceSettings.from_dict(PRICE),
    )  # fmt: skip
    result = json.loads(scores.read_text())
    authored = [
        json.loads(line)["mt"]
        for line in (ROOT / "resources/demo/llm/parallel_authored_mt.jsonl")
        .read_text()
        .splitlines()
    ]
    refs = [
        json.loads(line)["fr"]
        for line in (ROOT / tr["quality"]["test_file"]).read_text().splitlines()
    ]
    rows = [json.loads(line) for line in translations.read_text().splitlines()]
    assert [r["mt"] for r in rows] == authored and result["failed"] == []
    assert result["bleu"] == round(BLEU().corpus_score(authored, [refs]).score, 2)
    assert result["chrf"] == round(CHRF().corpus_score(authored, [refs]).score, 2)
    assert 30 < result["bleu"] < 100 and result["segments"] == 8
    assert result["paper"]["gpt-4o-mini"] == {"bleu": 51.01, "comet": 0.8751}
    report = tmp_path / "report.md"
    quality_report(scores, None, report)
    text = report.read_text()
    assert f"| gpt-4o-mini (this run) | {result['bleu']:.2f} |" in text and "not run" in text
    assert "| gemini-2.0-flash (paper) | 53.72 | - | 0.8783 |" in text
    triples = comet_inputs(translations)
    assert triples[3] == {"src": rows[3]["en"], "mt": rows[3]["mt"], "ref": rows[3]["fr"]}


def test_missing_test_file_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="translation.quality.test_file"):
        endpoint = EndpointSettings(base_url="http://127.0.0.1:9/v1", api_key_env="UNUSED")
        translation_quality(tmp_path / "none.jsonl", tmp_path / "s", tmp_path / "t", endpoint,
                            "m", 0.0, 8, "replay", None, str(tmp_path / "c"))  # fmt: skip


def test_comet_script_imports_without_openai() -> None:
    # envs/comet.yaml has no openai (nor transformers 5): the script's imports must not need them
    code = (
        "import sys; sys.modules['openai'] = None; sys.modules['transformers'] = None\n"
        "import runpy; runpy.run_path('workflow/scripts/translation_comet.py')\n"
        "import medinjection.stages.translation_quality as stage; print(stage.comet_score.__name__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "comet_score"
