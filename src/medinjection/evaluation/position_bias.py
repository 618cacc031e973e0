"""Position bias: option-shuffled reruns of MCQ/MCQU test sets and their scores.

Each multiple-choice record gets `k` seeded option orders (never the original order, distinct from
each other while the options allow it), as the authors' ``*_swap1``/``*_swap2`` copies (study.md
§9). Letters stay in position order (A, B, C, ...): the option texts move and the gold letters are
remapped to the positions their texts moved to. Scores: constrained EM per run (run 0 = original
order), the micro mean over the original and every swap (MedAdapt ``bootstrap.py``), and per-item
consistency (the same valid answer, in original letters, in every run).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from medinjection.evaluation.metrics import exact_match
from medinjection.evaluation.parsing import normalize_gold, split_letters
from medinjection.evaluation.permutation import ORDER_SEPARATOR

log = logging.getLogger(__name__)

RUN_COLUMNS = ("id", "task", "permutation", "option_order", "gold", "greedy_parsed")
SCORE_COLUMNS = (*RUN_COLUMNS, "constrained_parsed")


def to_original(parsed: str | None, letters: str, option_order: str) -> tuple[str, ...] | None:
    """Parsed letters of one run ("A,C") in original letters (sorted), or None when invalid."""
    if parsed is None:
        return None
    original = dict(zip(split_letters(letters), option_order.split(ORDER_SEPARATOR), strict=True))
    return tuple(sorted(original[letter] for letter in split_letters(parsed)))


@dataclasses.dataclass(frozen=True)
class ItemRuns:
    """One item across the original order (run 0) and its swaps."""

    testset: str
    id: str
    task: str
    gold: tuple[str, ...]  # original letters
    answers: tuple[tuple[str, ...] | None, ...]  # constrained, original letters, per run
    correct: tuple[float, ...]  # constrained EM per run
    correct_greedy: tuple[float, ...]  # greedy EM per run

    @property
    def consistent(self) -> bool:
        """The same valid answer in every run (an invalid output shows no choice to keep)."""
        return None not in self.answers and len(set(self.answers)) == 1


def item_runs(testset: str, rows: Sequence[dict[str, Any]], runs: int) -> list[ItemRuns]:
    """Group prediction rows of every run (original = permutation 0) by item id."""
    by_id: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["id"], {})[int(row["permutation"])] = row
    items = []
    for item_id, per_run in by_id.items():
        if sorted(per_run) != list(range(runs)):
            raise ValueError(
                f"{testset}: item {item_id!r} has runs {sorted(per_run)}, expected 0..{runs - 1}; "
                "rerun the predict rule of this model"
            )
        ordered = [per_run[k] for k in range(runs)]
        original = ordered[0]
        items.append(
            ItemRuns(
                testset=testset,
                id=item_id,
                task=original["task"],
                gold=normalize_gold(original["gold"] or ""),
                answers=tuple(
                    to_original(r["constrained_parsed"], r["letters"], r["option_order"])
                    for r in ordered
                ),
                correct=tuple(_em(r, "constrained_parsed") for r in ordered),
                correct_greedy=tuple(_em(r, "greedy_parsed") for r in ordered),
            )
        )
    return items


def _em(row: dict[str, Any], column: str) -> float:
    parsed = row[column]
    return exact_match(
        normalize_gold(row["gold"] or ""), None if parsed is None else split_letters(parsed)
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summary(items: Sequence[ItemRuns], runs: int) -> dict[str, Any]:
    """EM per run, micro EM over all runs, consistency and all-runs-correct rate."""
    out: dict[str, Any] = {"n": len(items), "runs": runs}
    out["em_by_run"] = [_mean([item.correct[k] for item in items]) for k in range(runs)]
    out["em_greedy_by_run"] = [
        _mean([item.correct_greedy[k] for item in items]) for k in range(runs)
    ]
    out["em_micro"] = _mean([c for item in items for c in item.correct])
    out["em_greedy_micro"] = _mean([c for item in items for c in item.correct_greedy])
    present = [em for em in out["em_by_run"] if em is not None]
    out["em_spread"] = max(present) - min(present) if present else None
    out["consistency"] = _mean([float(item.consistent) for item in items])
    out["all_runs_correct"] = _mean([float(all(item.correct)) for item in items])
    return out
