"""Exact and near dedup with test decontamination (medinjection.dataset)."""

from __future__ import annotations

from medinjection.dataset import deduplicate, normalize_text
from tests.support.records import OPTIONS, rec


def test_normalize_text() -> None:
    assert normalize_text("  Quel  TRAITEMENT\u00a0?! (ﬁn) ") == "quel traitement fin"
    assert normalize_text(None) == ""


def test_exact_duplicate_and_test_leak_are_removed() -> None:
    question = "Quel est le traitement de première intention de la goutte aiguë ?"
    records = [
        rec("a:1", "test", question),
        rec("a:2", "train", question.upper() + "  ", options=tuple(reversed(OPTIONS))),
        rec("b:1", "train", "Quel examen confirme l'embolie pulmonaire ?"),
        rec("b:2", "train", "Quel examen confirme l'embolie pulmonaire?"),
    ]
    kept, removals = deduplicate(records, 0.9)
    assert [r.id for r in kept] == ["a:1", "b:1"]
    assert [(r.id, r.reason, r.matched_id) for r in removals] == [
        ("a:2", "test_leak_exact", "a:1"),
        ("b:2", "duplicate_exact", "b:1"),
    ]


def test_near_duplicate_leak_and_context_rule() -> None:
    long_q = (
        "Un homme de 54 ans consulte pour une douleur thoracique rétrosternale constrictive "
        "de plus de vingt minutes irradiant dans le bras gauche. Quel examen demander ?"
    )
    records = [
        rec("t:1", "test", long_q),
        rec("t:2", "validation", long_q.replace("54 ans", "55 ans")),  # near leak
        rec("c:1", "train", "Quel est le diagnostic ?", context="Fièvre et toux productive."),
        rec("c:2", "train", "Quel est le diagnostic ?", context="Arthrite aiguë du gros orteil."),
    ]
    kept, removals = deduplicate(records, 0.9)
    assert [(r.id, r.reason, r.matched_id) for r in removals] == [("t:2", "test_leak_near", "t:1")]
    assert {r.id for r in kept} == {"t:1", "c:1", "c:2"}  # same stem, different cases: kept
    kept_low, _ = deduplicate(records, 0.999)
    assert "t:2" in {r.id for r in kept_low}
