"""MedMCQA (openlifescienceai/medmcqa): English Indian entrance-exam MCQs (AIIMS/NEET PG).

Raw form: HF parquet `data/train-*.parquet`, `data/validation-*.parquet`, `data/test-*.parquet`
with id, question, opa..opd, cop (correct option, 0-based in the HF files), choice_type
(single/multi), exp (explanation, often null), subject_name, topic_name.
Splits: the HF test split has no labels (cop = -1 on every row), so it is not read; the
labelled dev (`validation`) split is our test split, as is usual for MedMCQA, and train is
hashed into train/validation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import LETTERS, Record
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    options_from_texts,
    read_parquet_rows,
    require_files,
    split_of_file,
)

LOG = logging.getLogger(__name__)
SPLITS: dict[str, str] = {"train": "train", "validation": "test", "test": "unlabelled"}
OPTION_KEYS: tuple[str, ...] = ("opa", "opb", "opc", "opd")


def load_medmcqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English MCQU records of MedMCQA (train -> train/validation, dev -> test)."""
    for path in require_files(raw_dir, "**/*.parquet", source):
        split = split_of_file(path, SPLITS, source)
        rows = read_parquet_rows(path)
        if split == "unlabelled":
            LOG.info("%s: skipping %d unlabelled test rows of %s", source, len(rows), path.name)
            continue
        for row in rows:
            yield _record(row, split, source)


def _record(row: dict[str, Any], split: str, source: str) -> RawResult:
    raw_id = clean(row.get("id"))
    cop = row.get("cop")
    if raw_id is None:
        return Quarantined("?", ("missing id",), row)
    if not isinstance(cop, int) or not 0 <= cop < len(OPTION_KEYS):
        return Quarantined(raw_id, (f"cop {cop!r} is not a 0-based option index 0..3",), row)
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
