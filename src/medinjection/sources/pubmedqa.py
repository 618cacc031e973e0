"""PubMedQA (qiaojin/PubMedQA): yes/no/maybe questions on abstracts, in two raw forms.

- GitHub `data/ori_pqal.json`: one JSON object keyed by PMID; each value has upper-case keys
  QUESTION, CONTEXTS (list of abstract sections), LABELS, MESHES, YEAR, LONG_ANSWER,
  final_decision (yes/no/maybe).
- Hub `pqa_labeled/train-*.parquet`: the same 1,000 items with lower-case keys pubid, question,
  context {contexts, labels, meshes}, long_answer, final_decision.
Each item becomes an MCQU with options A yes, B no, C maybe (in the record's language: English
here, translated later with the rest of the record), the contexts joined by CONTEXT_JOIN as
context, and LONG_ANSWER kept in meta["long_answer"]; adapter `pubmedqa_oeq` turns the same
items into open questions whose answer is the long answer (id `<source>:<pmid>`, split hashed on
`pubmedqa:<pmid>` so both views of one abstract always share a split).
Adapter `pubmedqa_artificial` reads the Hub's `pqa_artificial/train-*.parquet` (211,269 items
with machine-generated yes/no labels, same columns): MCQU records hashed into train/validation
only, since the official test items are labelled ones (the public split sizes of MedQA, MedMCQA,
PubMedQA labelled + artificial, MedXpertQA and the MMLU subsets add up to 418,656, against the
417,674 translated records published, so the artificial set was most likely translated too).
Splits: the labelled set has none. When the official `test_ground_truth.json` (PMID -> decision)
is staged next to ori_pqal.json, those PMIDs are the test split and the rest is hashed into
train/validation; otherwise every item is hashed into train/validation/test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from medinjection.records import Record, Split
from medinjection.sources.base import (
    ROW,
    Quarantined,
    RawResult,
    clean,
    load_json_file,
    load_json_with_lines,
    located_rows,
    read_parquet_rows,
    require_files,
)

DECISIONS: dict[str, str] = {"yes": "A", "no": "B", "maybe": "C"}
OPTIONS: tuple[tuple[str, str], ...] = (("A", "yes"), ("B", "no"), ("C", "maybe"))
CONTEXT_JOIN = "\n"
TEST_IDS_FILE = "test_ground_truth.json"


def load_pubmedqa(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English yes/no/maybe MCQU records of PubMedQA-labelled."""
    items, test_ids = _items(raw_dir, source)
    for pmid, item, where in items:
        ROW.where = where
        yield _record(pmid, item, source, test_ids)


def load_pubmedqa_oeq(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English open questions of PubMedQA-labelled: the answer is the long answer."""
    items, test_ids = _items(raw_dir, source)
    for pmid, item, where in items:
        ROW.where = where
        result = _record(pmid, item, source, test_ids)
        long_answer = clean(item.get("LONG_ANSWER"))
        if isinstance(result, Quarantined):
            yield result
            continue
        if long_answer is None:
            yield Quarantined(pmid, ("no LONG_ANSWER for the open question",), item)
            continue
        meta = {k: v for k, v in result.meta.items() if k != "long_answer"}
        yield replace(
            result,
            task="oeq",
            options=None,
            answer=long_answer,
            meta=meta | {"final_decision": item.get("final_decision"), "split_key": _key(pmid)},
        )


def load_pubmedqa_artificial(raw_dir: Path, source: str) -> Iterator[RawResult]:
    """English yes/no MCQU records of PubMedQA-artificial (train/validation only)."""
    for path in require_files(raw_dir, "**/pqa_artificial/*.parquet", source):
        for _, row in located_rows(path, read_parquet_rows(path)):
            yield _record(str(row.get("pubid")), _from_hub_row(row), source, set())


def _key(pmid: str) -> str:
    return f"pubmedqa:{pmid}"


Located = tuple[str, dict[str, Any], str]


def _items(raw_dir: Path, source: str) -> tuple[list[Located], set[str] | None]:
    """(pmid, item in the ori_pqal form, file:line or file row) and the official test PMIDs."""
    paths = sorted(p for p in raw_dir.glob("**/ori_pqal.json") if p.is_file())
    if len(paths) > 1:
        raise ValueError(f"source {source!r}: several ori_pqal.json files staged: {paths}")
    if paths:
        items, lines = load_json_with_lines(paths[0])
        if not isinstance(items, dict) or lines is None:
            raise ValueError(f"source {source!r}: {paths[0]} must hold one JSON object by PMID")
        located = [(str(k), v, f"{paths[0]}:{lines[k]}") for k, v in items.items()]
        return located, _official_test_ids(paths[0].parent)
    rows = [(str(row.get("pubid")), _from_hub_row(row), f"{p} row {i}")
            for p in require_files(raw_dir, "**/pqa_labeled/*.parquet", source)
            for i, row in enumerate(read_parquet_rows(p))]  # fmt: skip
    return rows, None


def _from_hub_row(row: dict[str, Any]) -> dict[str, Any]:
    context = row.get("context") or {}
    return {
        "QUESTION": row.get("question"),
        "CONTEXTS": list(context.get("contexts") or []),
        "LABELS": list(context.get("labels") or []),
        "MESHES": list(context.get("meshes") or []),
        "LONG_ANSWER": row.get("long_answer"),
        "final_decision": row.get("final_decision"),
    }


def _official_test_ids(folder: Path) -> set[str] | None:
    path = folder / TEST_IDS_FILE
    return set(load_json_file(path)) if path.exists() else None


def _record(pmid: str, item: dict[str, Any], source: str, test_ids: set[str] | None) -> RawResult:
    decision = (clean(item.get("final_decision")) or "").lower()
    contexts = item.get("CONTEXTS")
    reasons = []
    if decision not in DECISIONS:
        reasons.append(f"final_decision {decision!r} not in {sorted(DECISIONS)}")
    if not isinstance(contexts, list) or not contexts:
        reasons.append("CONTEXTS is not a non-empty list")
    if reasons or not isinstance(contexts, list):
        return Quarantined(pmid, tuple(reasons), item)
    split: Split
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
