"""Position bias: option-shuffled reruns of MCQ/MCQU test sets and their scores.

Each multiple-choice record gets `k` seeded option orders (never the original order, distinct from
each other while the options allow it), as the authors' ``*_swap1``/``*_swap2`` copies (study.md
§9). Letters stay in position order (A, B, C, ...): the option texts move and the gold letters are
remapped to the positions their texts moved to. Scores: constrained EM per run (run 0 = original
order), the micro mean over the original and every swap (MedAdapt ``bootstrap.py``), and per-item
consistency (the same valid answer, in original letters, in every run).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from medinjection.evaluation.metrics import exact_match
from medinjection.evaluation.parsing import normalize_gold, split_letters
from medinjection.evaluation.permutation import (  # noqa: F401 (re-exported)
    ORDER_SEPARATOR,
    option_orders,
    order_string,
    permute_record,
    permuted_records,
)
from medinjection.manifests import check_inputs

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


def _read_runs(original: Path, permuted: Path) -> list[dict[str, Any]]:
    columns = [*SCORE_COLUMNS, "letters"]
    rows = pq.read_table(original, columns=columns).to_pylist()
    if any(int(row["permutation"]) != 0 for row in rows):
        raise ValueError(f"{original}: the original predictions must all have permutation 0")
    return rows + pq.read_table(permuted, columns=columns).to_pylist()


def _write_items(items: Sequence[ItemRuns], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["testset", "id", "task", "gold", "answers", "correct_runs", "consistent"])
        for item in items:
            answers = "|".join("-" if a is None else ",".join(a) or "-" for a in item.answers)
            writer.writerow(
                [
                    item.testset,
                    item.id,
                    item.task,
                    ",".join(item.gold),
                    answers,
                    int(sum(item.correct)),
                    int(item.consistent),
                ]
            )


def score_position_bias(
    model: str,
    prediction_files: list[Path],
    permuted_files: list[Path],
    test_sets: dict[str, dict],
    permutations: int,
    seed: int,
    out_json: Path,
    out_items: Path,
    input_manifests: list[Path] | None = None,
) -> None:
    """Write the position-bias scores of one model (JSON) and its per-item consistency (CSV);
    the predictions are first checked against `input_manifests` (predict's)."""
    if input_manifests is not None:
        check_inputs([*prediction_files, *permuted_files], input_manifests, "position_bias")
    originals = {Path(p).stem: Path(p) for p in prediction_files}
    runs = permutations + 1
    results: dict[str, Any] = {}
    pools: dict[str, list[ItemRuns]] = {"mcq": [], "mcqu": []}
    every: list[ItemRuns] = []
    for permuted in map(Path, permuted_files):
        name = permuted.stem
        if name not in originals or name not in test_sets:
            raise KeyError(
                f"{permuted}: no original predictions {name}.parquet among {sorted(originals)} "
                f"or no test set {name!r} in evaluation.test_sets"
            )
        items = item_runs(name, _read_runs(originals[name], permuted), runs)
        results[name] = {"task": test_sets[name]["task"], **summary(items, runs)}
        pools[test_sets[name]["task"]].extend(items)
        every.extend(items)
        log.info("%s/%s: %d items x %d runs", model, name, len(items), runs)
    payload: dict[str, Any] = {
        "model": model,
        "permutations": permutations,
        "seed": seed,
        "decoding": "em_* = constrained decoding, em_greedy_* = greedy; run 0 = original order",
        "testsets": results,
        "aggregate": {
            **{task: summary(items, runs) for task, items in pools.items() if items},
            "all": summary(every, runs),
        },
    }
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    _write_items(every, Path(out_items))
    log.info(
        "wrote %s (micro EM %s, consistency %s)",
        out_json,
        payload["aggregate"]["all"]["em_micro"],
        payload["aggregate"]["all"]["consistency"],
    )


def position_bias_table(score_files: list[Path], out_csv: Path) -> None:
    """One row per model: EM per run, micro EM, spread and consistency over all MC items."""
    rows = []
    for path in map(Path, score_files):
        payload = json.loads(path.read_text(encoding="utf-8"))
        agg = payload["aggregate"]["all"]
        row = {"model": payload["model"], "n": agg["n"], "runs": agg["runs"]}
        row.update({f"em_run{k}": em for k, em in enumerate(agg["em_by_run"])})
        for key in ("em_micro", "em_spread", "consistency", "all_runs_correct", "em_greedy_micro"):
            row[key] = agg[key]
        rows.append(row)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with out_csv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
