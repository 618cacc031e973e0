"""PubMedQA (qiaojin/PubMedQA, GitHub `data/ori_pqal.json`): yes/no/maybe questions on abstracts.

Raw form: one JSON object keyed by PMID; each value has upper-case keys QUESTION, CONTEXTS
(list of abstract sections), LABELS, MESHES, YEAR, LONG_ANSWER, final_decision (yes/no/maybe).
Each item becomes an MCQU with options A yes, B no, C maybe (in the record's language: English
here, translated later with the rest of the record), the contexts joined by CONTEXT_JOIN as
context, and LONG_ANSWER kept in meta["long_answer"].
Splits: ori_pqal has none. When the official `test_ground_truth.json` (PMID -> decision) is
staged next to it, those PMIDs are the test split and the rest is hashed into train/validation;
otherwise every item is hashed into train/validation/test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medinjection.records import Record
from medinjection.sources.base import Quarantined, RawResult, clean, require_files

DECISIONS: dict[str, str] = {"yes": "A", "no": "B", "maybe": "C"}
OPTIONS: tuple[tuple[str, str], ...] = (("A", "yes"), ("B", "no"), ("C", "maybe"))
CONTEXT_JOIN = "\n"
TEST_IDS_FILE = "test_ground_truth.json"


def load_pubmedqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English yes/no/maybe MCQU records of PubMedQA-labelled."""
    paths = require_files(raw_dir, "**/ori_pqal.json", source)
    if len(paths) > 1:
        raise ValueError(f"source {source!r}: several ori_pqal.json files staged: {paths}")
    path = paths[0]
    items = json.loads(path.read_text(encoding="utf-8"))
    test_ids = _official_test_ids(path.parent)
    for pmid, item in items.items():
        yield _record(str(pmid), item, source, test_ids)


def _official_test_ids(folder: Path) -> set[str] | None:
    path = folder / TEST_IDS_FILE
    return set(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None


def _record(pmid: str, item: dict[str, Any], source: str, test_ids: set[str] | None) -> RawResult:
    decision = (clean(item.get("final_decision")) or "").lower()
    contexts = item.get("CONTEXTS")
    reasons = []
    if decision not in DECISIONS:
        reasons.append(f"final_decision {decision!r} not in {sorted(DECISIONS)}")
    if not isinstance(contexts, list) or not contexts:
        reasons.append("CONTEXTS is not a non-empty list")
    if reasons:
        return Quarantined(pmid, tuple(reasons), item)
    if test_ids is None:
        split, rule = "train", "hash"
    elif pmid in test_ids:
        split, rule = "test", "source"
    else:
        split, rule = "train", "hash_train_validation"
    return Record(
        id=f"{source}:{pmid}",
        origin="translated",
        source=source,
        task="mcqu",
        split=split,
        question=clean(item.get("QUESTION")) or "",
        answer=DECISIONS[decision],
        options=OPTIONS,
        context=CONTEXT_JOIN.join(c for c in (clean(x) for x in contexts) if c),
        language="en",
        meta={
            "source_split": "test" if rule == "source" else None,
            "split_rule": rule,
            "long_answer": clean(item.get("LONG_ANSWER")),
            "year": item.get("YEAR"),
            "meshes": item.get("MESHES") or [],
        },
    )
