"""Stages of workflow/rules/position_bias.smk: the position-bias scores of one model (its
original and option-shuffled predictions, scored by `evaluation.position_bias`) and the summary
table over the models.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from medinjection.evaluation.position_bias import SCORE_COLUMNS, ItemRuns, item_runs, summary
from medinjection.manifests import check_inputs
from medinjection.settings import PositionBiasSettings, TestSetSettings

log = logging.getLogger(__name__)


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
    test_sets: Mapping[str, TestSetSettings],
    position_bias: PositionBiasSettings,
    out_json: Path,
    out_items: Path,
    input_manifests: list[Path] | None = None,
) -> None:
    """Write the position-bias scores of one model (JSON) and its per-item consistency (CSV);
    the predictions are first checked against `input_manifests` (predict's)."""
    if input_manifests is not None:
        check_inputs([*prediction_files, *permuted_files], input_manifests, "position_bias")
    originals = {Path(p).stem: Path(p) for p in prediction_files}
    permutations, seed = position_bias.permutations, position_bias.seed
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
        results[name] = {"task": test_sets[name].task, **summary(items, runs)}
        pools[test_sets[name].task].extend(items)
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
