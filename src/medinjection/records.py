"""The one record schema every stage reads and writes, and its parquet I/O."""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Literal, TypeGuard, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

Task = Literal["mcqu", "mcq", "oeq"]
Origin = Literal["native", "translated", "synthetic"]
Split = Literal["train", "validation", "test"]

TASKS: tuple[str, ...] = get_args(Task)
ORIGINS: tuple[str, ...] = get_args(Origin)
SPLITS: tuple[str, ...] = get_args(Split)
LETTERS: str = string.ascii_uppercase[:10]  # MedXpertQA has up to 10 options (A-J)


def is_split(value: str) -> TypeGuard[Split]:
    """Whether a split name read from a raw file is one of ours."""
    return value in SPLITS


ARROW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("origin", pa.string()),
        ("source", pa.string()),
        ("task", pa.string()),
        ("split", pa.string()),
        ("specialty", pa.string()),
        ("context", pa.string()),
        ("question", pa.string()),
        ("options", pa.list_(pa.struct([("letter", pa.string()), ("text", pa.string())]))),
        ("answer", pa.string()),
        ("language", pa.string()),
        ("meta", pa.string()),
    ]
)


@dataclass(frozen=True)
class Record:
    """One QA item. `answer` is comma-joined sorted letters for mcq/mcqu, free text for oeq."""

    id: str
    origin: Origin
    source: str
    task: Task
    split: Split
    question: str
    answer: str
    options: tuple[tuple[str, str], ...] | None = None
    context: str | None = None
    specialty: str | None = None
    language: str = "fr"
    meta: dict[str, Any] = field(default_factory=dict)

    def answer_letters(self) -> tuple[str, ...]:
        """Gold letters of an MCQ/MCQU record (empty for open questions)."""
        if self.task == "oeq":
            return ()
        return tuple(part.strip() for part in self.answer.split(",") if part.strip())

    def option_letters(self) -> tuple[str, ...]:
        """Option letters in order (empty for open questions)."""
        return tuple(letter for letter, _ in self.options or ())


# Longest text a field may hold: a 1 MB "question" is a broken row, and it would be sent on to the
# LLM (translation) and to every model's prompt.
MAX_FIELD_CHARS = 100_000
# C0 controls but tab/newline/CR, DEL, C1 controls, and the bidi embeddings/overrides/isolates
# (an RLO reverses what a reader sees: "A" shown where "B" is stored).
_HIDDEN_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A character a reader sees: not whitespace and not zero-width (a question made of zero-width
# characters only is empty to a reader).
_VISIBLE = re.compile("[^\\s\u200b\u200c\u200d\u2060\ufeff]")
# HTML/XML markup left by a scraper or an editor ("<p>", "<br/>", "</b>", "<script ...>").
_MARKUP = re.compile(
    r"</?(?:a|b|i|u|p|br|hr|em|strong|span|div|font|sup|sub|img|table|tr|td|th|li|ul|ol|h[1-6]|"
    r"script|style|iframe|html|body|head)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)


def _blank(text: str | None) -> bool:
    """True for None, whitespace, or zero-width characters only."""
    if not text:
        return True
    if text.isprintable():  # C-fast: no control, format (zero-width, bidi) or line-end character
        return not text.strip()
    return _VISIBLE.search(text) is None


def text_errors(name: str, value: str | None) -> list[str]:
    """Why one text field cannot be kept: size, hidden control or bidi characters, markup."""
    if not value:
        return []
    errors = []
    if len(value) > MAX_FIELD_CHARS:
        errors.append(f"{name} has {len(value)} characters (more than {MAX_FIELD_CHARS})")
    # the quick C-level tests first: most fields are printable and hold no '<'
    hidden = None if value.isprintable() else _HIDDEN_CONTROLS.search(value)
    if hidden:
        errors.append(f"control or bidi character U+{ord(hidden.group()):04X} in {name}")
    markup = _MARKUP.search(value) if "<" in value else None
    if markup:
        errors.append(f"markup {markup.group()[:40]!r} in {name}")
    return errors


def join_letters(letters: Iterable[str]) -> str:
    """Canonical answer string for a set of letters: upper-case, unique, sorted, comma-joined."""
    return ",".join(sorted({letter.strip().upper() for letter in letters if letter.strip()}))


def validation_errors(record: Record) -> list[str]:
    """Reasons why a record is invalid (empty list when it is valid)."""
    errors: list[str] = []
    if not record.id or ":" not in record.id:
        errors.append("id must be '<source>:<original id>'")
    if record.origin not in ORIGINS:
        errors.append(f"origin {record.origin!r} not in {ORIGINS}")
    if record.task not in TASKS:
        errors.append(f"task {record.task!r} not in {TASKS}")
    if record.split not in SPLITS:
        errors.append(f"split {record.split!r} not in {SPLITS}")
    if _blank(record.question):
        errors.append("empty question")
    if _blank(record.answer):
        errors.append("empty answer")
    for name, value in (
        ("question", record.question),
        ("answer", record.answer),
        ("context", record.context),
    ):
        # is_normalized answers from a quick check without building the normal form
        if value and ("\ufffd" in value or not unicodedata.is_normalized("NFC", value)):
            errors.append(f"broken or non-NFC encoding in {name}")
    errors.extend(_text_field_errors(record))
    errors.extend(_option_errors(record))
    return errors


def _text_field_errors(record: Record) -> list[str]:
    fields = [("question", record.question), ("answer", record.answer), ("context", record.context)]
    fields += [(f"option {letter}", text) for letter, text in record.options or ()]
    # one C-level pass over all the texts at once; field by field only when it finds something
    if not _suspect("".join([value for _, value in fields if value])):
        return []
    errors = []
    for name, value in fields:
        if value and _suspect(value):
            errors.extend(text_errors(name, value))
    return errors


def _suspect(text: str) -> bool:
    """Quick C-level pre-test of text_errors: most fields are short, printable and hold no '<'."""
    return len(text) > MAX_FIELD_CHARS or not text.isprintable() or "<" in text


_LETTER_SET = frozenset(LETTERS)


def _same_texts(options: tuple[tuple[str, str], ...]) -> list[str]:
    """Options whose texts are equal but for case."""
    errors: list[str] = []
    seen: dict[str, str] = {}
    for letter, text in options:
        key = (text or "").lower()
        if key and key in seen:
            errors.append(f"options {seen[key]} and {letter} have the same text {text[:40]!r}")
        seen.setdefault(key, letter)
    return errors


def _option_errors(record: Record) -> list[str]:
    options = record.options
    if record.task == "oeq":
        return ["open question must not have options"] if options else []
    if not options:
        return ["multiple-choice record without options"]
    letters = [letter for letter, _ in options]
    errors = []
    if len(set(letters)) != len(letters):
        errors.append("duplicate option letters")
    if not all([not _blank(text) for _, text in options]):  # a list: no generator frames
        errors.append("empty option text")
    if not _LETTER_SET.issuperset(letters):
        not_letters = [letter for letter in letters if letter not in _LETTER_SET]
        errors.append(f"option letter(s) {not_letters} are not among {list(LETTERS)}")
    # lower(), not casefold(): four times faster on accented text, and the same for these texts
    lowered = [(text or "").lower() for _, text in options]
    if len(set(lowered)) != len(lowered):
        errors.extend(_same_texts(options))
    gold = [part.strip() for part in record.answer.split(",") if part.strip()]  # answer_letters
    unknown = [letter for letter in gold if letter not in letters]
    if unknown:
        errors.append(f"answer letter(s) {unknown} not among options {letters}")
    if record.task == "mcqu" and len(gold) != 1:
        errors.append(f"single-answer record with {len(gold)} answers")
    if record.task == "mcq" and len(gold) < 1:
        errors.append("multi-answer record without answers")
    return errors


def to_row(record: Record) -> dict[str, Any]:
    """Arrow-ready dict of a record (field by field: dataclasses.asdict deep-copies, 10x slower)."""
    return {
        "id": record.id,
        "origin": record.origin,
        "source": record.source,
        "task": record.task,
        "split": record.split,
        "specialty": record.specialty,
        "context": record.context,
        "question": record.question,
        "options": [{"letter": letter, "text": text} for letter, text in record.options]
        if record.options is not None
        else None,
        "answer": record.answer,
        "language": record.language,
        "meta": encode_meta(record.meta),
    }


def from_row(row: dict[str, Any]) -> Record:
    """Record from an arrow/parquet row dict."""
    options = row.get("options")
    return Record(
        id=row["id"],
        origin=row["origin"],
        source=row["source"],
        task=row["task"],
        split=row["split"],
        question=row["question"],
        answer=row["answer"],
        options=tuple((o["letter"], o["text"]) for o in options) if options is not None else None,
        context=row.get("context"),
        specialty=row.get("specialty"),
        language=row.get("language") or "fr",
        meta=json.loads(row["meta"]) if row.get("meta") else {},
    )


def encode_meta(meta: dict[str, Any]) -> str:
    """The meta column's JSON text (sorted keys, UTF-8 kept), as json.dumps would write it."""
    return _META_ENCODER.encode(meta)


# one encoder for all rows: json.dumps with options builds a new JSONEncoder on every call
_META_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'  # what json escapes in a str when ensure_ascii=False


def meta_column(metas: Sequence[dict[str, Any]]) -> pa.Array:
    """encode_meta of every meta as a string array, assembled key by key with Arrow kernels."""
    # An adapter's metas share a few key sets: per key set, each key's values are encoded as a
    # column ('"' + text + '"' where nothing needs escaping) and joined between the literal
    # key parts, so the per-record Python work is one dict lookup per key.
    key_sets = list(map(tuple, metas))
    if len(set(key_sets)) == 1:  # the usual case: one group, already in order
        keys = key_sets[0]
        if all(type(key) is str for key in keys):
            return _meta_group(sorted(keys), list(metas))
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, keys in enumerate(key_sets):
        groups[keys].append(i)
    parts, order = [], []
    for keys, rows in groups.items():
        group = [metas[i] for i in rows]
        if all(type(key) is str for key in keys):
            parts.append(_meta_group(sorted(keys), group))
        else:  # json converts such keys to text after sorting: leave them to the encoder
            parts.append(pa.array([encode_meta(m) for m in group], type=pa.string()))
        order.extend(rows)
    if not parts:
        return pa.array([], type=pa.string())
    where: np.ndarray = np.empty(len(order), dtype=np.int64)
    where[np.array(order, dtype=np.int64)] = np.arange(len(order))
    return pa.concat_arrays(parts).take(pa.array(where))


def _meta_group(keys: list[str], metas: list[dict[str, Any]]) -> pa.Array:
    """JSON text of metas that all have exactly these (sorted) keys."""
    if not keys:
        return pa.array(["{}"] * len(metas), type=pa.string())
    pieces: list[pa.Array | pa.Scalar] = []
    for n, key in enumerate(keys):
        literal = ("{" if n == 0 else ", ") + json.encoder.encode_basestring(key) + ": "
        pieces += [pa.scalar(literal), _json_values(list(map(itemgetter(key), metas)))]
    return pc.binary_join_element_wise(*pieces, pa.scalar("}"), "")


def _json_values(values: list[Any]) -> pa.Array:
    """JSON text of each value, as the meta encoder writes it inside a dict."""
    if not set(map(type, values)) <= {str, type(None)}:
        return pa.array([encode_meta(value) for value in values], type=pa.string())
    texts = pa.array(values, type=pa.string())
    quoted = pc.binary_join_element_wise(pa.scalar('"'), texts, pa.scalar('"'), "")
    escape = pc.fill_null(pc.match_substring_regex(texts, _NEEDS_ESCAPE), False)
    if pc.any(escape).as_py():
        rows = np.flatnonzero(escape.to_numpy(zero_copy_only=False))
        fixed = [json.encoder.encode_basestring(values[i]) for i in rows]
        quoted = pc.replace_with_mask(quoted, escape, pa.array(fixed, type=pa.string()))
    return pc.fill_null(quoted, "null")


def records_table(records: Sequence[Record]) -> pa.Table:
    """Arrow table of records with the fixed schema, built column by column (fast path)."""
    names = [f.name for f in ARROW_SCHEMA if f.name not in ("options", "meta")]
    # one C-level attrgetter call per record, then a transpose: one Python pass, not one a column
    rows = list(map(attrgetter(*names), records))
    transposed = zip(*rows, strict=True) if rows else ([] for _ in names)
    columns: dict[str, Sequence[Any]] = dict(zip(names, transposed, strict=True))
    columns["options"] = [
        None if r.options is None else [{"letter": k, "text": t} for k, t in r.options]
        for r in records
    ]
    arrays = [
        meta_column([r.meta for r in records])
        if f.name == "meta"
        else pa.array(columns[f.name], type=f.type)
        for f in ARROW_SCHEMA
    ]
    return pa.table(arrays, schema=ARROW_SCHEMA)


def write_records(records: Sequence[Record], path: str | Path) -> None:
    """Write records to a parquet file with the fixed schema (an empty list gives an empty file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(records_table(records), path)


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    """All rows of a table as dicts, column by column (a quarter faster than to_pylist)."""
    names = table.column_names
    columns = [table[name].to_pylist() for name in names]
    # the columns of one table have one length: strict checks would only cost time
    return [dict(zip(names, values, strict=False)) for values in zip(*columns, strict=False)]


def read_records(path: str | Path) -> list[Record]:
    """Read records written by `write_records`."""
    table = pq.read_table(Path(path), schema=ARROW_SCHEMA)
    return [from_row(row) for row in table_rows(table)]
