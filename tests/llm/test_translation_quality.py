"""Translation quality scores (BLEU/chrF) and the cost estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medinjection.llm.estimate import estimate_study, render
from medinjection.llm.quality import corpus_scores
from medinjection.records import Record, write_records

ROOT = Path(__file__).resolve().parents[2]
PRICE = {"input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.60, "batch_discount": 0.5}


def test_corpus_scores_of_identical_text_are_perfect() -> None:
    scores = corpus_scores(["Le patient va bien."], ["Le patient va bien."])
    assert scores["bleu"] == 100.0 and scores["chrf"] == 100.0
    assert scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")


def estimate_config(volumes: dict) -> dict:
    return {
        "results_dir": "results/study",
        "study": {"seed": 1},
        "sources": {"medqa": {"role": "translate"}, "morfitt": {"role": "synthesize"}},
        "llm": {
            "prices": {"gpt-4o-mini": PRICE, "gpt-4o": {**PRICE, "input_usd_per_mtok": 2.5}},
            "estimate": {"chars_per_token": 4.0, "translation_output_ratio": 1.25,
                         "output_tokens_per_item": {"oeq": 100, "mcq": 50}, "volumes": volumes},
        },
        "translation": {"endpoint": "openai", "model": "gpt-4o-mini", "temperature": 0.0,
                        "max_tokens": 64},
        "synthesis": {"model": "gpt-4o", "temperature": 0.7, "max_tokens": 64,
                      "mcq_per_document": 2, "task_types": {"factual_qa": 3}},
    }  # fmt: skip


def test_estimate_from_volumes_and_from_built_records(tmp_path: Path) -> None:
    config = estimate_config(
        {"medqa": {"items": 1000, "chars_per_item": 400},
         "morfitt": {"items": 10, "chars_per_item": 1000}}
    )  # fmt: skip
    tr, sy = estimate_study(config, tmp_path)
    assert (tr.basis, tr.items, tr.requests) == ("volumes", 1000, 1000)
    assert tr.output_tokens == 1000 * 400 * 1.25 / 4  # 125,000
    assert tr.input_tokens > 1000 * 400 / 4  # payload plus the prompt and schema overhead
    assert tr.direct_usd == round((tr.input_tokens * 0.15 + tr.output_tokens * 0.60) / 1e6, 2)
    assert tr.batch_usd == pytest.approx(tr.direct_usd / 2, abs=0.006)
    # synthesis: 10 documents x (1 open-QA request of 3 items + 1 MCQ request of 2 items)
    assert (sy.items, sy.requests, sy.output_tokens) == (10, 20, 10 * (3 * 100 + 2 * 50))
    assert "**study total**" in render([tr, sy])
    built = tmp_path / "results/study" / "normalized" / "medqa" / "records.parquet"
    built.parent.mkdir(parents=True)
    options = (("A", "yes"), ("B", "no"))
    write_records([Record(f"medqa:{i}", "translated", "medqa", "mcqu", "train", "Why?" * 10, "A",
                          options, language="en") for i in range(3)], built)  # fmt: skip
    tr = estimate_study(config, tmp_path)[0]
    assert (tr.basis, tr.items) == ("records", 3)
    with pytest.raises(KeyError, match=r"no llm.estimate.volumes entry .*have: \['medqa'\]"):
        estimate_study(estimate_config({"medqa": {"items": 1, "chars_per_item": 1}}), tmp_path)


def test_estimate_covers_every_source_of_the_study_config(tmp_path: Path) -> None:
    """The study's own config estimates without any built input (every source has a volume)."""

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    rows = estimate_study(config, tmp_path)
    translate = [s for s, spec in config["sources"].items() if spec["role"] == "translate"]
    volumes = config["llm"]["estimate"]["volumes"]
    translation = {row.source: row for row in rows if row.stage == "translation"}
    assert sorted(translation) == sorted(translate)
    assert all(translation[s].items == volumes[s]["items"] for s in translate)
    # public split sizes (MMLU: the six medical subjects staged, 1,242 items) + the PubMedQA
    # open-question view
    assert sum(row.items for row in translation.values()) == 418_027 + 1_000
    assert all(row.basis == "volumes" and row.direct_usd > row.batch_usd > 0 for row in rows)
