"""MedMCQA (openlifescienceai/medmcqa): English Indian entrance-exam MCQs (AIIMS/NEET PG).

Two raw forms, one adapter each (the source's `adapter` key picks it):
- `medmcqa`: the Hub parquet `data/train-*.parquet`, `data/validation-*.parquet`,
  `data/test-*.parquet`; `cop` (correct option) is **0-based** (0..3; -1 on unlabelled rows).
- `medmcqa_json`: the original release (github.com/medmcqa/medmcqa, data download):
  `train.json`, `dev.json`, `test.json`, JSON Lines; `cop` is **1-based** (1..4). Read as
  0-based it would shift every gold answer by one option, so each adapter checks its range.
Both have id, question, opa..opd, cop, choice_type (single/multi), exp (explanation, often
null), subject_name, topic_name.
Splits: the test split has no labels (cop -1 or absent), so it is not read; the labelled dev
(`validation`) split is our test split, as is usual for MedMCQA, and train is hashed into
train/validation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from medinjection.records import LETTERS, Record, Split
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    json_line_items,
    located_rows,
    options_from_texts,
    read_parquet_rows,
    require_files,
    split_of_file,
)

LOG = logging.getLogger(__name__)
SPLITS: dict[str, Split | Literal["unlabelled"]] = {
    "train": "train",
    "validation": "test",
    "test": "unlabelled",
}
JSON_SPLITS: dict[str, Split | Literal["unlabelled"]] = {
    "train": "train",
    "dev": "test",
    "test": "unlabelled",
}
OPTION_KEYS: tuple[str, ...] = ("opa", "opb", "opc", "opd")


def load_medmcqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English MCQU records of MedMCQA (train -> train/validation, dev -> test)."""
    for path in require_files(raw_dir, "**/*.parquet", source):
        split = split_of_file(path, SPLITS, source)
        rows = read_parquet_rows(path)
        if split == "unlabelled":
            LOG.info("%s: skipping %d unlabelled test rows of %s", source, len(rows), path.name)
            continue
        for _, row in located_rows(path, rows):
            yield _record(row, split, source, first=0)


def load_medmcqa_json(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """The same records from the original JSON Lines release (1-based `cop`)."""
    for path in require_files(raw_dir, "**/*.json", source):
        split = split_of_file(path, JSON_SPLITS, source)
        if split == "unlabelled":
            LOG.info("%s: skipping the unlabelled test file %s", source, path.name)
            continue
        for _, row in json_line_items(path):
            yield row if isinstance(row, Quarantined) else _record(row, split, source, first=1)


def _record(row: dict[str, Any], split: Split, source: str, first: int) -> RawResult:
    """One record; `first` is the raw index of option A (0 in the Hub parquet, 1 in the JSON)."""
    raw_id = clean(row.get("id"))
    cop = row.get("cop")
    if raw_id is None:
        return Quarantined("?", ("missing id",), row)
    last = first + len(OPTION_KEYS) - 1
    if isinstance(cop, bool) or not isinstance(cop, int) or not first <= cop <= last:
        form = "Hub parquet (adapter medmcqa)" if first == 0 else "original JSON (medmcqa_json)"
        return Quarantined(
            raw_id,
            (f"cop {cop!r} is not an option index {first}..{last} of the {form} form",),
            row,
        )
    cop -= first
    return Record(
        id=f"{source}:{raw_id}",
        origin="translated",
        source=source,
        task="mcqu",
        split=split,
        question=clean(row.get("question")) or "",
        answer=LETTERS[cop],
        options=options_from_texts(row.get(key) for key in OPTION_KEYS),
        specialty=clean(row.get("subject_name")),
        language="en",
        meta={
            "source_split": "validation" if split == "test" else "train",
            "split_rule": "source" if split == "test" else "hash_train_validation",
            "choice_type": row.get("choice_type"),
            "topic_name": clean(row.get("topic_name")),
            "explanation": clean(row.get("exp")),
        },
    )
