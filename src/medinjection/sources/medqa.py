"""MedQA (USMLE, jind11/MedQA; bigbio/med_qa): English board-exam MCQs.

Raw form: JSON Lines `train.jsonl`, `dev.jsonl`, `test.jsonl` (the `questions/US` layout);
each line has question, answer (text), options (dict letter -> text), answer_idx (letter),
meta_info and metamap_phrases. Lines carry no id: a record's id is `<split>-<line number>`.
dev is our validation split. A line whose answer text differs from options[answer_idx] is
quarantined (the two encodings disagree, so the gold is unknown).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import Record, Split
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    json_line_items,
    require_files,
    split_of_file,
)

SPLITS: dict[str, Split] = {"train": "train", "dev": "validation", "test": "test"}


def load_medqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English MCQU records of MedQA, keeping the source's splits."""
    for path in require_files(raw_dir, "**/*.jsonl", source):
        split = split_of_file(path, SPLITS, source)
        prefix = path.name.split(".")[0]
        for number, item in json_line_items(path):
            if isinstance(item, Quarantined):
                yield item
                continue
            yield _record(item, split, source, f"{prefix}-{number:05d}")


def _record(item: dict[str, Any], split: Split, source: str, raw_id: str) -> RawResult:
    options = item.get("options")
    if not isinstance(options, dict):
        return Quarantined(raw_id, ("'options' is not a dict of letter -> text",), item)
    letter = (clean(item.get("answer_idx")) or "").upper()
    answer_text = clean(item.get("answer"))
    if letter in options and answer_text is not None and clean(options[letter]) != answer_text:
        reason = f"answer text {answer_text!r} differs from option {letter} {options[letter]!r}"
        return Quarantined(raw_id, (reason,), item)
    return Record(
        id=f"{source}:{raw_id}",
        origin="translated",
        source=source,
        task="mcqu",
        split=split,
        question=clean(item.get("question")) or "",
        answer=letter,
        options=tuple((str(k).upper(), clean(v) or "") for k, v in sorted(options.items())),
        language="en",
        meta={"source_split": split, "split_rule": "source", "meta_info": item.get("meta_info")},
    )
