"""Shared types of the source adapters: quarantined items, corpus documents, split rules."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

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
    where: str | None = None  # '<file>:<line>' or '<file> row <index>', set by normalize


class RowCursor:
    """Where the raw row an adapter read last comes from: '<file>:<line>' (JSON Lines, JSON,
    CSV/TSV: 1-based line) or '<file> row <index>' (parquet: 0-based row index).

    Adapters read lazily and yield each item right after reading its row, so when normalize
    receives an item the cursor names that item's row. Every quarantined item (a parse failure,
    an adapter's check or a record's validation) thus gets its file and line without the
    adapters' Record | Quarantined interface carrying it.
    """

    __slots__ = ("where",)

    def __init__(self) -> None:
        self.where: str | None = None


ROW = RowCursor()


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


def json_line_items(path: Path) -> Iterator[tuple[int, dict[str, Any] | Quarantined]]:
    """(line number, object) for each non-blank line of a JSON Lines file.

    A line that is not valid UTF-8 or not one JSON object comes as a Quarantined item naming the
    file and line (raw id '<file name>:<line>'), so one bad line costs one row, not the source.
    """
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            ROW.where = where
            try:
                value = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                byte = f"{raw[err.start]:#04x} at column {err.start + 1}"
                reason = f"{where}: not UTF-8 (byte {byte}); re-encode the file as UTF-8"
                yield number, _bad_line(path, number, reason, raw)
                continue
            except json.JSONDecodeError as err:
                reason = f"{where}: malformed JSON ({err.msg} at column {err.pos + 1})"
                yield number, _bad_line(path, number, reason, raw)
                continue
            if not isinstance(value, dict):
                reason = f"{where}: a JSON {type(value).__name__}, not an object"
                yield number, _bad_line(path, number, reason, raw)
                continue
            yield number, value


def _bad_line(path: Path, number: int, reason: str, raw: bytes) -> Quarantined:
    text = raw.decode("utf-8", errors="backslashreplace")[:500]
    raw_view = {"file": str(path), "line": number, "text": text}
    return Quarantined(f"{Path(path).name}:{number}", (reason,), raw_view)


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each line; a bad line raises naming the file and line."""
    for number, item in json_line_items(path):
        if isinstance(item, Quarantined):
            raise ValueError(f"{item.reasons[0]}; fix or remove that line")
        yield number, item


def load_json_file(path: Path) -> Any:
    """A whole JSON file; invalid UTF-8 or JSON raises naming the file, line and column."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 (byte {data[err.start]:#04x}); re-encode the file as UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8) and stage the source again"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno}); fix the "
            "file and stage the source again"
        ) from None


def load_json_with_lines(path: Path) -> tuple[Any, list[int] | dict[str, int] | None]:
    """A whole JSON file and the line each top-level element starts on (a list for an array, a
    dict key -> line for an object, None otherwise); errors as `load_json_file`'s."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        load_json_file(path)  # raises naming the file and line
        raise
    try:
        return _scan_json(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno}); fix the "
            "file and stage the source again"
        ) from None


_WS = re.compile(r"[ \t\n\r]*")
_DECODE = json.JSONDecoder().raw_decode


def _ws_end(text: str, pos: int = 0) -> int:
    """Where the JSON whitespace that starts at pos ends (the pattern matches even nothing)."""
    match = _WS.match(text, pos)
    assert match is not None  # `[ \t\n\r]*` matches the empty string at any position
    return match.end()


def _scan_json(text: str) -> tuple[Any, list[int] | dict[str, int] | None]:
    """One pass over a top-level array or object: its elements decoded in C, their lines."""
    pos = _ws_end(text)
    if pos >= len(text) or text[pos] not in "[{":
        return json.loads(text), None
    is_object = text[pos] == "{"
    closer = "}" if is_object else "]"
    values: Any = {} if is_object else []
    lines: Any = {} if is_object else []
    line, counted = 1, 0
    pos = _ws_end(text, pos + 1)
    if text.startswith(closer, pos):
        pos += 1
    else:
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            if is_object:
                key, pos = _object_key(text, pos)
                values[key], pos = _DECODE(text, _ws_end(text, pos))
                lines[key] = line
            else:
                value, pos = _DECODE(text, pos)
                values.append(value)
                lines.append(line)
            pos = _ws_end(text, pos)
            if text.startswith(",", pos):
                pos = _ws_end(text, pos + 1)
            elif text.startswith(closer, pos):
                pos += 1
                break
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
    if _ws_end(text, pos) != len(text):
        raise json.JSONDecodeError("Extra data", text, pos)
    return values, lines


def _object_key(text: str, pos: int) -> tuple[str, int]:
    if not text.startswith('"', pos):
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = _DECODE(text, pos)
    pos = _ws_end(text, pos)
    if not text.startswith(":", pos):
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    return key, pos + 1


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of a parquet file as dicts (column-wise conversion: several times faster)."""
    return table_rows(pq.read_table(path))


def located_rows(path: Path, rows: list[Any]) -> Iterator[tuple[int, Any]]:
    """(index, row) of rows read from one parquet file, the row cursor set to each in turn."""
    for index, row in enumerate(rows):
        ROW.where = f"{path} row {index}"
        yield index, row


def located_items(path: Path, items: list[Any], lines: list[int] | None) -> Iterator[Any]:
    """The items of a JSON array, the row cursor set to each one's file and line."""
    for index, item in enumerate(items):
        ROW.where = f"{path}:{lines[index]}" if lines else f"{path} item {index}"
        yield item


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


_Split = TypeVar("_Split", bound=str)


def split_of_file(path: Path, mapping: dict[str, _Split], source: str) -> _Split:
    """Our split for a raw file whose name starts with the source's split name (e.g. 'dev.json')."""
    prefix = path.name.split(".")[0].split("-")[0].lower()
    try:
        return mapping[prefix]
    except KeyError:
        raise ValueError(
            f"source {source!r}: raw file {path} has no known split prefix; "
            f"expected one of {sorted(mapping)}"
        ) from None
