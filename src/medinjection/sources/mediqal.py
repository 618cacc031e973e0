"""MediQAl (ANR-MALADES/MediQAl): French national medical exam questions, three configs.

Raw form: one folder per config (`mcqu`, `mcqm`, `oeq`) holding the HF parquet files of each
split (`train-*.parquet`, `validation-*.parquet`, `test-*.parquet`; the oeq config is test-only).
Fields (dataset card): id, clinical_case (often null), question, answer_a..answer_e,
correct_answers (comma-joined upper-case letters, e.g. "C,D"), medical_subject, question_type;
the oeq config has `answer` (free text) and cc_question_number instead of options.
The exact parquet file names inside each config folder are unverified; any *.parquet is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import Record, Split, Task, join_letters
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    located_rows,
    read_parquet_rows,
    require_files,
    split_of_file,
)

CONFIG_TASKS: dict[str, Task] = {"mcqu": "mcqu", "mcqm": "mcq", "oeq": "oeq"}
SPLITS: dict[str, Split] = {"train": "train", "validation": "validation", "test": "test"}
OPTION_KEYS: tuple[str, ...] = ("answer_a", "answer_b", "answer_c", "answer_d", "answer_e")


def load_mediqal(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """Records of the three MediQAl configs, keeping the source's own splits."""
    files = require_files(raw_dir, "*/*.parquet", source)
    for path in files:
        config = path.parent.name
        if config not in CONFIG_TASKS:
            raise ValueError(
                f"source {source!r}: unexpected config folder {path.parent}; "
                f"expected one of {sorted(CONFIG_TASKS)}"
            )
        split = split_of_file(path, SPLITS, source)
        for _, row in located_rows(path, read_parquet_rows(path)):
            yield _record(row, config, split, source)


def _record(row: dict[str, Any], config: str, split: Split, source: str) -> RawResult:
    raw_id = clean(row.get("id"))
    if raw_id is None:
        return Quarantined(f"{config}/{split}/?", ("missing id",), row)
    task = CONFIG_TASKS[config]
    if task == "oeq":
        options = None
        answer = clean(row.get("answer")) or ""
    else:
        options = tuple(
            (key[-1].upper(), clean(row.get(key)) or "") for key in OPTION_KEYS if key in row
        )
        answer = join_letters((clean(row.get("correct_answers")) or "").split(","))
    return Record(
        id=f"{source}:{raw_id}",
        origin="native",
        source=source,
        task=task,
        split=split,
        question=clean(row.get("question")) or "",
        answer=answer,
        options=options,
        context=clean(row.get("clinical_case")),
        specialty=clean(row.get("medical_subject")),
        language="fr",
        meta={
            "config": config,
            "source_split": split,
            "split_rule": "source",
            "question_type": clean(row.get("question_type")),
        },
    )
