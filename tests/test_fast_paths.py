"""The data path's fast forms give exactly what the plain forms they replace give."""

from __future__ import annotations

import json
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

from medinjection.dedup import NFKC_BLOCK, bodies_from_columns, normalize_array
from medinjection.records import ARROW_SCHEMA, encode_meta, meta_column
from medinjection.sources.base import options_from_texts

TRICKY = [
    "",
    " ",
    "  a  ",
    "a  b",
    "a\tb",
    "a\u00a0b",
    "a , b",
    "a, b",
    "?!",
    "x_y-z",
    "ﬁn ½",
    "e\u0301té",
    "Ⅻ №",
    "a\n\nb",
    "\u0301début",
    "fin\u0301",
    "ÉLÈVE Œuf",
]


def _plain_normalize(text: str | None) -> str:
    """The reference: NFKC, lower-case, every non-letter/digit run to one space, stripped."""
    folded = pc.utf8_lower(pa.array([unicodedata.normalize("NFKC", text or "")]))
    collapsed = pc.replace_substring_regex(folded, r"[^\p{L}\p{N}]+", " ")
    return pc.utf8_trim_whitespace(collapsed)[0].as_py()


def test_normalize_array_matches_the_plain_method() -> None:
    texts = [*TRICKY, None] + [f"mot{i} é" for i in range(NFKC_BLOCK + 7)]
    texts[NFKC_BLOCK + 3] = "ﬁ dans le deuxième bloc"
    got = normalize_array(pa.array(texts)).to_pylist()
    assert got == [_plain_normalize(t) for t in texts]


def test_bodies_sort_options_as_python_does() -> None:
    options = [
        [{"letter": "A", "text": "Zèbre"}, {"letter": "B", "text": "abeille"}],
        None,
        [],
        [{"letter": "A", "text": "é"}, {"letter": "B", "text": "e"}, {"letter": "C", "text": "f"}],
    ]
    questions = ["Quelle ?", "Ouverte ?", None, "Accents ?"]
    array = pa.array(options, type=ARROW_SCHEMA.field("options").type)
    got = bodies_from_columns(pa.array(questions), array).to_pylist()
    expected = [
        " | ".join([_plain_normalize(q), *sorted(_plain_normalize(o["text"]) for o in opts or [])])
        for q, opts in zip(questions, options, strict=True)
    ]
    assert got == expected


def test_encode_meta_is_json_dumps() -> None:
    metas = [
        {},
        {"b": 'é"\n\\', "a": None, "c": "\u2028"},
        {"n": 1, "f": 1.5, "t": True},
        {"nested": {"y": [1, "é"], "x": None}},
        {"s": "\x00\x1f\x7f"},
    ]
    for meta in metas:
        assert encode_meta(meta) == json.dumps(meta, ensure_ascii=False, sort_keys=True)


def test_meta_column_is_json_dumps_per_record() -> None:
    mixed = [
        {"b": 'é"\n\\', "a": None},
        {"a": "x", "b": "tab\there"},
        {"b": None, "a": "other key order"},
        {1: "int key"},
        {},
        {"n": 1, "f": float("nan"), "t": True, "l": [1, "é"], "d": {"y": None, "x": 2}},
        {"a": 1, "b": "x"},
    ]
    for metas in (mixed, [mixed[0]] * 3, [{}] * 2, []):
        expected = [json.dumps(m, ensure_ascii=False, sort_keys=True) for m in metas]
        assert meta_column(metas).to_pylist() == expected


def test_options_from_texts_letters_beyond_z() -> None:
    options = options_from_texts([f" t{i} " for i in range(28)])
    assert options[0] == ("A", "t0") and options[25] == ("Z", "t25")
    assert options[26] == ("[", "t26")
