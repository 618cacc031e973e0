"""mlabonne/medical-cases-fr and mlabonne/medical-mqca-fr: French medical exam items.

UNVERIFIED raw form: both repos hold parquet files `data/train-*.parquet` and
`data/eval-*.parquet`, but no field names were visible anywhere. We assume:
- medical-cases-fr: clinical_case, question, answer (free text) -> open questions (oeq);
- medical-mqca-fr: question, choices (list of option texts), answer (comma-joined letters)
  -> mcqu with one letter, mcq with several.
Neither has ids: a record's id is `<file stem>/<row number>` (e.g. `train-00000-of-00001/00003`).
`eval` is our validation split; these sources have no test split (not MedInjection test sets).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import Record, Split, join_letters
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    located_rows,
    options_from_texts,
    read_parquet_rows,
    require_files,
    split_of_file,
)

SPLITS: dict[str, Split] = {"train": "train", "eval": "validation"}


def load_medical_cases_fr(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """Open questions on French clinical cases (assumed fields clinical_case/question/answer)."""
    for split, raw_id, row in _rows(raw_dir, source):
        yield Record(
            id=f"{source}:{raw_id}",
            origin="native",
            source=source,
            task="oeq",
            split=split,
            question=clean(row.get("question")) or "",
            answer=clean(row.get("answer")) or "",
            context=clean(row.get("clinical_case")),
            language="fr",
            meta={"source_split": split, "split_rule": "source"},
        )


def load_medical_mqca_fr(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """French MCQs (assumed fields question/choices/answer); task by the number of answers."""
    for split, raw_id, row in _rows(raw_dir, source):
        choices = row.get("choices")
        if not isinstance(choices, list):
            yield Quarantined(raw_id, ("'choices' is not a list of option texts",), row)
            continue
        answer = join_letters((clean(row.get("answer")) or "").split(","))
        yield Record(
            id=f"{source}:{raw_id}",
            origin="native",
            source=source,
            task="mcq" if len(answer.split(",")) > 1 else "mcqu",
            split=split,
            question=clean(row.get("question")) or "",
            answer=answer,
            options=options_from_texts(choices),
            language="fr",
            meta={"source_split": split, "split_rule": "source"},
        )


def _rows(raw_dir: Path, source: str) -> Iterator[tuple[Split, str, dict[str, Any]]]:
    for path in require_files(raw_dir, "data/*.parquet", source):
        split = split_of_file(path, SPLITS, source)
        for number, row in located_rows(path, read_parquet_rows(path)):
            yield split, f"{path.stem}/{number:05d}", row
