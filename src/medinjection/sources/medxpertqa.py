"""MedXpertQA (TsinghuaC3I/MedXpertQA, Text config): hard English expert-level MCQs (A-J).

Raw form: HF JSON Lines `Text/dev.jsonl` (5 few-shot items) and `Text/test.jsonl`; each line has
id, question (ending with "Answer Choices: (A) ... (J) ..."), options (dict letter -> text),
label (a letter), medical_task, body_system, question_type. The MM config needs images and is
not read. The trailing "Answer Choices:" block is stripped from the question because options
are rendered separately by the prompt templates. dev is used as train, test as test.
"""

from __future__ import annotations

import re
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

SPLITS: dict[str, Split] = {"dev": "train", "test": "test"}
ANSWER_CHOICES = re.compile(r"\s*Answer Choices:\s*\(A\).*\Z", re.DOTALL)


def strip_answer_choices(question: str) -> str:
    """The question without its trailing 'Answer Choices: (A) ...' block."""
    return ANSWER_CHOICES.sub("", question).strip()


def load_medxpertqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English MCQU records of MedXpertQA Text (dev -> train, test -> test)."""
    for path in require_files(raw_dir, "Text/*.jsonl", source):
        split = split_of_file(path, SPLITS, source)
        for number, item in json_line_items(path):
            if isinstance(item, Quarantined):
                yield item
                continue
            yield _record(item, split, source, f"{path.name}:{number}")


def _record(item: dict[str, Any], split: Split, source: str, where: str) -> RawResult:
    raw_id = clean(item.get("id")) or where
    options = item.get("options")
    if not isinstance(options, dict):
        return Quarantined(raw_id, ("'options' is not a dict of letter -> text",), item)
    return Record(
        id=f"{source}:{raw_id}",
        origin="translated",
        source=source,
        task="mcqu",
        split=split,
        question=strip_answer_choices(clean(item.get("question")) or ""),
        answer=(clean(item.get("label")) or "").upper(),
        options=tuple((str(k).upper(), clean(v) or "") for k, v in sorted(options.items())),
        specialty=clean(item.get("body_system")),
        language="en",
        meta={
            "source_split": split,
            "split_rule": "source",
            "medical_task": item.get("medical_task"),
            "question_type": item.get("question_type"),
        },
    )
