"""S-Editions (https://s-editions.fr/): French study material for medical students, not public.

The MedInjection-FR native card counts 526 QA pairs scraped from the platform; the scrape is not
distributed, so a user who has the right to use the material provides it as a local file (see
`obtain` in config/config.yaml). Accepted form (ours, documented because no public one exists):
JSON Lines `*.jsonl`, one object per item with
- `id` (required, unique), `question` (required), `answer` (required);
- `options`: a dict letter -> text (an MCQ; `answer` then holds the correct letter(s),
  comma-separated, e.g. "B" or "A, C"), or absent/null (an open question answered by `answer`);
- optional `context` (clinical case), `specialty`, `split` (train/validation/test; absent ->
  seeded hash split).
An MCQ with one correct letter is mcqu, with several mcq.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import SPLITS, Record, Split, Task, is_split, join_letters
from medinjection.sources.base import Quarantined, RawResult, clean, json_line_items, require_files


def load_s_editions(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """French QA items of a local S-Editions export (open questions and MCQs)."""
    for path in require_files(raw_dir, "**/*.jsonl", source):
        for number, item in json_line_items(path):
            if isinstance(item, Quarantined):
                yield item
                continue
            yield _record(item, source, f"{path.stem}-{number:05d}")


def _record(item: dict[str, Any], source: str, line_id: str) -> RawResult:
    raw_id = clean(item.get("id"))
    if raw_id is None:
        return Quarantined(line_id, ("missing id",), item)
    raw_split = clean(item.get("split"))
    split: Split = "train"
    if raw_split is not None:
        if not is_split(raw_split):
            return Quarantined(raw_id, (f"split {raw_split!r} not in {SPLITS}",), item)
        split = raw_split
    options = item.get("options")
    if options is not None and not isinstance(options, dict):
        return Quarantined(
            raw_id, ("'options' is neither a dict of letter -> text nor null",), item
        )
    if options == {}:
        return Quarantined(raw_id, ("empty options (give null for an open question)",), item)
    answer = clean(item.get("answer")) or ""
    if options:
        answer = join_letters(answer.replace(";", ",").split(","))
    task: Task = "oeq" if not options else ("mcq" if "," in answer else "mcqu")
    return Record(
        id=f"{source}:{raw_id}",
        origin="native",
        source=source,
        task=task,
        split=split,
        question=clean(item.get("question")) or "",
        answer=answer,
        options=tuple((str(k).strip().upper(), clean(v) or "") for k, v in sorted(options.items()))
        if options
        else None,
        context=clean(item.get("context")),
        specialty=clean(item.get("specialty")),
        language="fr",
        meta={"split_rule": "source" if raw_split else "hash"},
    )
