"""Staging of physician annotations in the authors' format (candidate column named per model)."""

from __future__ import annotations

import json

import pytest

from medinjection.settings import MetaevalSettings
from medinjection.stages.judge import stage_annotations


def _metaeval(path, candidate_field: str) -> MetaevalSettings:
    location = {"kind": "local", "path": str(path)}
    return MetaevalSettings.from_dict({"annotations": location, "candidate_field": candidate_field})


def _item(item_id: int, column: str, answer: str, label: str) -> dict:
    return {"id": item_id, "Question": "Quel germe ?", "verite_terrain": "Le pneumocoque.",
            column: answer, "equivalence": label, "preference": "Vérité terrain"}  # fmt: skip


def test_auto_candidate_field_takes_the_model_named_column(tmp_path):
    source = tmp_path / "comparison.json"  # a JSON list, as in the authors' release
    source.write_text(json.dumps([
        _item(1, "Modele_A_sft", "Pneumocoque.", "Oui"),
        _item(2, "Modele_B_it", "Staphylocoque doré, très probablement.", "Non"),
    ], ensure_ascii=False))  # fmt: skip
    out = tmp_path / "staged.jsonl"
    stage_annotations(_metaeval(source, "auto"), out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["generator"], r["candidate"]) for r in rows] == [
        (1, "Modele_A_sft", "Pneumocoque."),
        (2, "Modele_B_it", "Staphylocoque doré, très probablement."),
    ]
    assert all("Modele_A_sft" not in r and "Modele_B_it" not in r for r in rows)


def test_candidate_field_errors_name_the_item(tmp_path):
    source = tmp_path / "a.jsonl"
    two = {**_item(7, "Modele_A", "x", "Oui"), "Modele_B": "y"}
    source.write_text(json.dumps(two) + "\n")
    with pytest.raises(ValueError, match=r"item 7.*2 candidate column\(s\)"):
        stage_annotations(_metaeval(source, "auto"), tmp_path / "o.jsonl")
    source.write_text(json.dumps(_item(8, "Modele_A", "x", "Oui")) + "\n")
    with pytest.raises(ValueError, match=r"item 8 lacks field\(s\) \['Modele_B'\]"):
        stage_annotations(_metaeval(source, "Modele_B"), tmp_path / "o.jsonl")
    source.write_text(json.dumps(_item(9, "Modele_A", "x", "oui")) + "\n")
    with pytest.raises(ValueError, match="Oui/Non"):
        stage_annotations(_metaeval(source, "Modele_A"), tmp_path / "o.jsonl")
