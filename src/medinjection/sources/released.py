"""The released MedInjection-FR datasets (MedInjection-FR/Native, /Translated, /Synthetic).

Raw form (study.md §1.6 and §2; the per-item fields are inferred from the authors' evaluation
code, not seen raw): `{Train,Validation,Test}/{mcq,mcqu,oeq}/*.json`, each a JSON list of items
{"messages": [{role, content}...] with the gold assistant turn, "classes": ["A", ...],
"answer": "A, C" or ["A", "C"]}. Items carry no id and no source dataset: a record's id is
`<source>:<split>/<task>/<file stem>/<position>` and its source the config's source name.
The user turn holds the whole prompt; option lines "(A) text", "A) text", "A. text" or
"A: text" whose letters are exactly `classes` become the options and the rest is the question.
An item whose options cannot be recovered that way is quarantined with the reason.

Because that per-item format is INFERRED (Evaluate.py / LLM-as-a-judge.py read `messages`,
`classes` and `answer`; no raw released item was seen), a file that does not have it stops the
job with the file and the field expected, instead of being guessed at: a file that is not one
JSON list of objects, or whose items all lack `messages` (any task) or `classes` / `answer`
(mcq, mcqu). A field missing from only some items quarantines those items.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import Origin, Record, Split, Task, join_letters
from medinjection.sources.base import (
    Quarantined,
    RawResult,
    clean,
    load_json_with_lines,
    located_items,
    require_files,
)

SPLIT_FOLDERS: dict[str, Split] = {"train": "train", "validation": "validation", "test": "test"}
TASK_FOLDERS: dict[str, Task] = {"mcq": "mcq", "mcqu": "mcqu", "oeq": "oeq"}
OPTION_LINE = re.compile(r"^\s*\(?([A-J])\s*[\)\.:]\s*(\S.*)$")


def load_released(raw_dir: Path, source: str, origin: Origin) -> Iterator[RawResult]:
    """Records of one released origin (files laid out Split/task/*.json)."""
    for path in require_files(raw_dir, "**/*.json", source):
        split = SPLIT_FOLDERS.get(path.parent.parent.name.lower())
        task = TASK_FOLDERS.get(path.parent.name.lower())
        if split is None or task is None:
            raise ValueError(
                f"source {source!r}: {path} is not under <Train|Validation|Test>/<mcq|mcqu|oeq>/"
            )
        items, lines = read_released_file(path, source, task)
        for n, item in enumerate(located_items(path, items, lines)):
            raw_id = f"{split}/{task}/{path.stem}/{n:06d}"
            yield _record(item, raw_id, source, origin, split, task)


INFERRED = "the per-item format is inferred from the authors' Evaluate.py (study.md §2), not seen"


class ReleasedFormatError(ValueError):
    """A released file whose items do not have the inferred fields."""


def read_released_file(
    path: Path, source: str, task: str
) -> tuple[list[dict[str, Any]], list[int] | None]:
    """The items of one released JSON file and their lines; ReleasedFormatError when not of the
    inferred shape."""
    try:
        items, lines = load_json_with_lines(path)
    except ValueError as error:
        raise ReleasedFormatError(
            f"source {source!r}: {path} is not one JSON document ({error}); expected a JSON list "
            f"of items ({INFERRED}). If the release changed format, adapt "
            "medinjection/sources/released.py"
        ) from None
    if (
        not isinstance(items, list)
        or isinstance(lines, dict)  # only a JSON object has keyed lines
        or not all(isinstance(item, dict) for item in items)
    ):
        raise ReleasedFormatError(
            f"source {source!r}: {path} holds a {type(items).__name__}, expected a JSON list of "
            f"objects ({INFERRED})"
        )
    required = ("messages",) if task == "oeq" else ("messages", "classes", "answer")
    for field in required:
        if items and all(field not in item for item in items):
            raise ReleasedFormatError(
                f"source {source!r}: no item of {path} has the field {field!r} expected for "
                f"{task} items ({INFERRED}); fields found: {sorted(items[0])}"
            )
    return items, lines


def _turn(item: dict[str, Any], role: str) -> str | None:
    messages = item.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict) and message.get("role") == role:
            return clean(message.get("content"))
    return None


def _record(
    item: dict[str, Any], raw_id: str, source: str, origin: Origin, split: Split, task: Task
) -> RawResult:
    user, gold = _turn(item, "user"), _turn(item, "assistant")
    if user is None:
        return Quarantined(raw_id, ("no user turn in messages",), item)
    if task != "oeq" and "answer" not in item:
        return Quarantined(raw_id, ("no 'answer' field",), item)
    question, options = user, None
    answer = gold or ""
    if task != "oeq":
        classes = [str(c).strip().upper() for c in item.get("classes") or []]
        question, options = split_options(user)
        if [letter for letter, _ in options] != classes or not classes:
            found = [letter for letter, _ in options]
            return Quarantined(
                raw_id, (f"option lines {found} do not match classes {classes}",), item
            )
        raw_answer = item["answer"]
        letters = (
            raw_answer if isinstance(raw_answer, list) else re.split(r"[\s,]+", str(raw_answer))
        )
        answer = join_letters(str(letter) for letter in letters)
    return Record(
        id=f"{source}:{raw_id}",
        origin=origin,
        source=source,
        task=task,
        split=split,
        question=question,
        answer=answer,
        options=options,
        language="fr",
        meta={"source_split": split, "split_rule": "source", "system": _turn(item, "system")},
    )


def split_options(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(question without option lines, options) from a prompt with one option per line."""
    kept, options = [], []
    for line in text.splitlines():
        match = OPTION_LINE.match(line)
        if match:
            options.append((match.group(1), match.group(2).strip()))
        else:
            kept.append(line)
    return "\n".join(kept).strip(), tuple(options)


def load_released_native(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """Released native records."""
    return load_released(raw_dir, source, "native")


def load_released_translated(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """Released translated records."""
    return load_released(raw_dir, source, "translated")


def load_released_synthetic(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """Released synthetic records."""
    return load_released(raw_dir, source, "synthetic")
