"""FrBMedQA (kadzaki/FrBMedQA): French biomedical cloze questions built from Wikipedia.

UNVERIFIED raw form: the dataset card describes passage-question instances with candidate
entities and an answer, but the field names were not visible anywhere. We assume JSON Lines
files `train.jsonl`, `dev.jsonl`, `test.jsonl` with fields id, passage, question (the blank
written `@placeholder`), candidates (list of entity strings) and answer (one of the candidates).
Conversion (MedInjection calls the items "originally closed-form"; its exact conversion is not
public): an MCQU whose context is the passage, whose question shows the blank as "_____", whose
options are the candidates in order and whose answer is the letter of the answer candidate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import LETTERS, Record, Split
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    json_line_items,
    options_from_texts,
    require_files,
    split_of_file,
)

SPLITS: dict[str, Split] = {"train": "train", "dev": "validation", "test": "test"}
PLACEHOLDER = "@placeholder"
BLANK = "_____"


def load_frbmedqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """MCQU records from FrBMedQA cloze items, keeping the source's splits."""
    for path in require_files(raw_dir, "*.jsonl", source):
        split = split_of_file(path, SPLITS, source)
        for number, item in json_line_items(path):
            if isinstance(item, Quarantined):
                yield item
                continue
            yield _record(item, split, source, f"{path.name}:{number}")


def _record(item: dict[str, Any], split: Split, source: str, where: str) -> RawResult:
    raw_id = clean(item.get("id")) or where
    candidates = [clean(c) for c in item.get("candidates") or []]
    answer = clean(item.get("answer"))
    question = clean(item.get("question")) or ""
    reasons = []
    if not candidates:
        reasons.append("no candidate entities")
    elif len(candidates) > len(LETTERS):
        reasons.append(f"{len(candidates)} candidates, more than {len(LETTERS)} option letters")
    elif answer not in candidates:
        reasons.append(f"answer {answer!r} is not among the candidates")
    if PLACEHOLDER not in question:
        reasons.append(f"question has no {PLACEHOLDER} blank")
    if reasons:
        return Quarantined(raw_id, tuple(reasons), item)
    return Record(
        id=f"{source}:{raw_id}",
        origin="native",
        source=source,
        task="mcqu",
        split=split,
        question=question.replace(PLACEHOLDER, BLANK),
        answer=LETTERS[candidates.index(answer)],
        options=options_from_texts(candidates),
        context=clean(item.get("passage")),
        language="fr",
        meta={"source_split": split, "split_rule": "source"},
    )
