"""Shared types of the source adapters: quarantined items, corpus documents, split rules."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from medinjection.records import Record, table_rows

# How normalize_source assigns a record's split, stored in record.meta["split_rule"]:
#   "source"                 keep the split the source itself gives (record.split as yielded);
#   "hash"                   the source has no split: seeded hash into train/validation/test;
#   "hash_train_validation"  the source's own test is used elsewhere (or absent): hash into
#                            train/validation only (e.g. MedMCQA train, whose dev is our test).
SplitRule = Literal["source", "hash", "hash_train_validation"]
DocumentKind = Literal["clinical_case", "abstract"]


@dataclass(frozen=True)
class Quarantined:
    """A raw item an adapter could not turn into a record, with the reasons why."""

    raw_id: str
    reasons: tuple[str, ...]
    raw: dict[str, Any]


RawResult = Record | Quarantined
Adapter = Callable[[Path, str], Iterator[RawResult]]


@dataclass(frozen=True)
class Document:
    """One French text (clinical case or abstract) that the synthesis stage turns into QA."""

    id: str
    source: str
    kind: DocumentKind
    specialty: str | None
    text: str


CorpusAdapter = Callable[[Path, str], Iterator[Document]]

DOCUMENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("specialty", pa.string()),
        ("text", pa.string()),
    ]
)


def write_documents(documents: Iterable[Document], path: str | Path) -> None:
    """Write documents to parquet (columns id, source, kind, specialty, text)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(d) for d in documents]
    pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), path)


def read_documents(path: str | Path) -> list[Document]:
    """Read documents written by `write_documents`."""
    rows = pq.read_table(Path(path), schema=DOCUMENT_SCHEMA).to_pylist()
    return [Document(**row) for row in rows]


def clean(text: Any) -> str | None:
    """NFC-normalised, stripped text; None for missing or blank values."""
    if text is None:
        return None
    # normalize returns its argument unchanged when the quick check says it is NFC already
    value = unicodedata.normalize("NFC", text if type(text) is str else str(text)).strip()
    return value or None


def hash_split(
    record_id: str,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    rule: SplitRule,
) -> str:
    """Deterministic split of one id: a uniform number from sha256(seed:id) cut at the fractions."""
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if rule == "hash":
        if u < test_fraction:
            return "test"
        return "validation" if u < test_fraction + validation_fraction else "train"
    if rule == "hash_train_validation":
        return "validation" if u < validation_fraction else "train"
    raise ValueError(f"hash_split has no meaning for split rule {rule!r}")


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, json.loads(line)


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of a parquet file as dicts (column-wise conversion: several times faster)."""
    return table_rows(pq.read_table(path))


def require_files(raw_dir: Path, pattern: str, source: str) -> list[Path]:
    """Sorted files under raw_dir matching a glob; an error naming the pattern when none match.

    Archive debris is not data: paths with a part starting with "." (macOS `._x` resource forks,
    the Hub's `.cache/`) or a `__MACOSX` folder (zips made on macOS) are left out.
    """
    files = sorted(
        p
        for p in raw_dir.glob(pattern)
        if p.is_file() and not _is_debris(p.relative_to(raw_dir).parts)
    )
    if not files:
        raise FileNotFoundError(
            f"source {source!r}: no raw file matches {pattern!r} under {raw_dir}; "
            "check the source's location in the config and re-run stage_source"
        )
    return files


def _is_debris(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def options_from_texts(texts: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    """Options lettered A, B, ... from option texts in order (blank texts kept, validated later)."""
    cleaned = [clean(text) or "" for text in texts]
    if len(cleaned) <= len(_OPTION_LETTERS):  # zip over a letter table: no per-option chr/ord
        return tuple(zip(_OPTION_LETTERS, cleaned, strict=False))
    return tuple((chr(ord("A") + i), text) for i, text in enumerate(cleaned))


_OPTION_LETTERS = tuple(chr(ord("A") + i) for i in range(26))


def split_of_file(path: Path, mapping: dict[str, str], source: str) -> str:
    """Our split for a raw file whose name starts with the source's split name (e.g. 'dev.json')."""
    prefix = path.name.split(".")[0].split("-")[0].lower()
    try:
        return mapping[prefix]
    except KeyError:
        raise ValueError(
            f"source {source!r}: raw file {path} has no known split prefix; "
            f"expected one of {sorted(mapping)}"
        ) from None
