"""FrenchMedMCQA (qanastek/FrenchMedMCQA, GitHub corpus): French pharmacy exam MCQs.

Raw form: JSON arrays `train.json`, `dev.json`, `test.json`; each item has id, question,
`answers` (dict a..e -> text), `correct_answers` (list of lower-case letters, 1 to 5),
subject_name, type (simple/multiple, absent in test) and nbr_correct_answers.
Task is decided by the number of correct answers (1 -> mcqu, more -> mcq); letters are
upper-cased. dev is our validation split.
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
    load_json_with_lines,
    located_items,
    require_files,
    split_of_file,
)

SPLITS: dict[str, Split] = {"train": "train", "dev": "validation", "test": "test"}


def load_frenchmedmcqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """Records of the three FrenchMedMCQA JSON arrays, keeping the source's splits."""
    for path in require_files(raw_dir, "*.json", source):
        split = split_of_file(path, SPLITS, source)
        items, lines = load_json_with_lines(path)
        if not isinstance(items, list) or isinstance(lines, dict):
            raise ValueError(f"source {source!r}: {path} must hold a JSON array of questions")
        for item in located_items(path, items, lines):
            yield _record(item, split, source)


def _record(item: dict[str, Any], split: Split, source: str) -> RawResult:
    raw_id = clean(item.get("id"))
    answers = item.get("answers")
    correct = item.get("correct_answers")
    reasons = []
    if raw_id is None:
        reasons.append("missing id")
    if not isinstance(answers, dict):
        reasons.append("'answers' is not a dict of letter -> text")
    if not isinstance(correct, list):
        reasons.append("'correct_answers' is not a list of letters")
    if reasons or raw_id is None or not isinstance(answers, dict) or not isinstance(correct, list):
        return Quarantined(raw_id or f"{split}/?", tuple(reasons), item)
    letters = join_letters(str(letter) for letter in correct)
    return Record(
        id=f"{source}:{raw_id}",
        origin="native",
        source=source,
        task="mcqu" if len(correct) == 1 else "mcq",
        split=split,
        question=clean(item.get("question")) or "",
        answer=letters,
        options=tuple((str(k).upper(), clean(v) or "") for k, v in sorted(answers.items())),
        specialty=clean(item.get("subject_name")),
        language="fr",
        meta={"source_split": split, "split_rule": "source", "type": item.get("type")},
    )
