"""Position bias: seeded option orders, gold remapping, and the scores on hand-computed files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from medinjection.evaluation.permutation import option_orders, permute_record, permuted_records
from medinjection.evaluation.position_bias import ItemRuns, to_original
from medinjection.records import Record
from medinjection.settings import PositionBiasSettings, TestSetSettings
from medinjection.stages.position_bias import position_bias_table, score_position_bias
from medinjection.stages.predict import write_predictions

X_MCQU = {"x-mcqu": TestSetSettings(origin="native", source="t", task="mcqu")}


def _record(answer: str = "A,C", task: str = "mcq", n: int = 4, rid: str = "t:1") -> Record:
    letters = "ABCDEFGHIJ"[:n]
    return Record(
        id=rid,
        origin="native",
        source="t",
        task=task,
        split="test",
        question="Quelle proposition ?",
        answer=answer,
        options=tuple((letter, f"texte {letter}") for letter in letters),
    )


def test_orders_are_seeded_non_identity_and_distinct() -> None:
    orders = option_orders("t:1", 5, 3, seed=42)
    assert orders == option_orders("t:1", 5, 3, seed=42)
    assert orders != option_orders("t:1", 5, 3, seed=43)
    assert orders != option_orders("t:2", 5, 3, seed=42)
    assert len(set(orders)) == 3 and tuple(range(5)) not in orders
    assert all(sorted(order) == list(range(5)) for order in orders)
    # two options: the only other order is the swap, repeated once exhausted
    assert option_orders("t:1", 2, 2, seed=0) == [(1, 0), (1, 0)]
    assert option_orders("t:1", 1, 2, seed=0) == [(0,), (0,)]


def test_permuted_record_moves_texts_and_remaps_gold() -> None:
    record = _record("A,C")
    permuted = permute_record(record, (2, 0, 3, 1))  # position A shows original C, ...
    assert permuted.options == (
        ("A", "texte C"),
        ("B", "texte A"),
        ("C", "texte D"),
        ("D", "texte B"),
    )
    assert permuted.answer == "A,B"  # C is now at A, A is now at B
    assert (permuted.id, permuted.question) == (record.id, record.question)
    # the gold always points at the same option texts
    gold_texts = {dict(permuted.options)[letter] for letter in permuted.answer_letters()}
    assert gold_texts == {"texte A", "texte C"}
    with pytest.raises(ValueError, match="not a permutation"):
        permute_record(record, (0, 0, 1, 2))


def test_permuted_records_are_permutation_major_and_consistent() -> None:
    records = [_record("B", "mcqu", 5, f"t:{i}") for i in range(4)]
    runs = permuted_records(records, permutations=2, seed=1)
    assert [(k, r.id) for k, _, r in runs] == [(k, f"t:{i}") for k in (1, 2) for i in range(4)]
    for _, order, permuted in runs:
        original = dict(_record("B", "mcqu", 5).options)
        shown = dict(permuted.options)
        assert [original[letter] for letter in order.split(",")] == list(shown.values())
        assert shown[permuted.answer] == "texte B"
        assert to_original(permuted.answer, "A,B,C,D,E", order) == ("B",)
    assert runs == permuted_records(records, permutations=2, seed=1)
    with pytest.raises(ValueError, match="open questions"):
        permuted_records([Record("t:o", "native", "t", "oeq", "test", "Q ?", "R")], 1, 0)


def test_invalid_answers_are_never_consistent() -> None:
    def runs(*answers):
        return ItemRuns("x", "t:1", "mcqu", ("A",), answers, (0.0,) * 3, (0.0,) * 3)

    assert runs(("A",), ("A",), ("A",)).consistent
    assert not runs(None, None, None).consistent
    assert not runs(("A",), ("B",), ("A",)).consistent


def test_to_original_maps_letters_back() -> None:
    assert to_original("A,B", "A,B,C,D", "C,A,D,B") == ("A", "C")
    assert to_original(None, "A,B,C,D", "C,A,D,B") is None


def _row(rid: str, k: int, order: str, gold: str, constrained: str | None, greedy=None) -> dict:
    return {
        "id": rid,
        "task": "mcqu",
        "permutation": k,
        "option_order": order,
        "prompt_hash": "h",
        "letters": "A,B,C",
        "gold": gold,
        "greedy_output": greedy,
        "greedy_parsed": greedy,
        "constrained_output": constrained,
        "constrained_parsed": constrained,
        "letter_probs": None,
    }


@pytest.fixture
def scored(tmp_path: Path) -> tuple[dict, list[dict]]:
    # item 1: gold A; answers the same option text (A) in every order -> consistent, all correct
    # item 2: gold B; answers "A" (the first position) in every order -> inconsistent
    # item 3: gold C; invalid output once
    original = [
        _row("t:1", 0, "A,B,C", "A", "A", greedy="A"),
        _row("t:2", 0, "A,B,C", "B", "A"),
        _row("t:3", 0, "A,B,C", "C", "C"),
    ]
    permuted = [
        _row("t:1", 1, "B,C,A", "C", "C"),  # original A is shown at C
        _row("t:2", 1, "B,A,C", "A", "A"),  # original B at A: position A again, now correct
        _row("t:3", 1, "C,B,A", "A", None),
        _row("t:1", 2, "C,A,B", "B", "B"),
        _row("t:2", 2, "C,B,A", "B", "A"),
        _row("t:3", 2, "B,A,C", "C", "C"),
    ]
    write_predictions(original, tmp_path / "pred" / "x-mcqu.parquet")
    write_predictions(permuted, tmp_path / "perm" / "x-mcqu.parquet")
    out_json, out_items = tmp_path / "pb" / "base.json", tmp_path / "pb" / "base.items.csv"
    score_position_bias(
        "base",
        [tmp_path / "pred" / "x-mcqu.parquet"],
        [tmp_path / "perm" / "x-mcqu.parquet"],
        X_MCQU,
        PositionBiasSettings(permutations=2, seed=42),
        out_json,
        out_items,
    )
    items = list(csv.DictReader(out_items.open(encoding="utf-8")))
    return json.loads(out_json.read_text()), items


def test_position_bias_scores_hand_computed(scored) -> None:
    payload, _ = scored
    result = payload["testsets"]["x-mcqu"]
    assert result["n"] == 3 and result["runs"] == 3
    assert result["em_by_run"] == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert result["em_micro"] == pytest.approx(6 / 9)
    assert result["em_spread"] == pytest.approx(0.0)
    assert result["consistency"] == pytest.approx(1 / 3)
    assert result["all_runs_correct"] == pytest.approx(1 / 3)
    assert result["em_greedy_by_run"] == pytest.approx([1 / 3, 0.0, 0.0])
    assert payload["aggregate"]["all"]["em_micro"] == pytest.approx(6 / 9)
    assert payload["aggregate"]["mcqu"] == payload["aggregate"]["all"]
    assert "mcq" not in payload["aggregate"]


def test_position_bias_items_file(scored) -> None:
    _, items = scored
    assert [(r["id"], r["answers"], r["correct_runs"], r["consistent"]) for r in items] == [
        ("t:1", "A|A|A", "3", "1"),
        ("t:2", "A|B|C", "1", "0"),
        ("t:3", "C|-|C", "2", "0"),
    ]


def test_position_bias_table_one_row_per_model(scored, tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    position_bias_table([tmp_path / "pb" / "base.json"], out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["model"] for row in rows] == ["base"]
    assert math.isclose(float(rows[0]["em_micro"]), 6 / 9)
    assert [float(rows[0][f"em_run{k}"]) for k in range(3)] == pytest.approx([2 / 3] * 3)


def test_missing_run_is_an_error(tmp_path: Path) -> None:
    write_predictions([_row("t:1", 0, "A,B,C", "A", "A")], tmp_path / "p" / "x-mcqu.parquet")
    write_predictions([_row("t:1", 1, "B,C,A", "C", "C")], tmp_path / "q" / "x-mcqu.parquet")
    with pytest.raises(ValueError, match=r"has runs \[0, 1\], expected 0..2"):
        score_position_bias(
            "base",
            [tmp_path / "p" / "x-mcqu.parquet"],
            [tmp_path / "q" / "x-mcqu.parquet"],
            X_MCQU,
            PositionBiasSettings(permutations=2, seed=0),
            tmp_path / "o.json",
            tmp_path / "o.csv",
        )
