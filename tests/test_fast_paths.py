"""The data path's fast forms give exactly what the plain forms they replace give."""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medinjection import dedup
from medinjection.dedup import (
    NFKC_BLOCK,
    ContextCache,
    DedupColumns,
    _may_match,
    band_keys,
    bodies_from_columns,
    candidate_groups,
    jaccard,
    near_pairs,
    near_removals,
    normalize_array,
    shingle_sets,
    shingles,
    signatures,
)
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


def _plain_near_removals(cols: DedupColumns, alive: np.ndarray, threshold: float) -> dict[int, int]:
    """The reference: every pair of every LSH group checked one at a time (the former code)."""
    groups = candidate_groups(band_keys(signatures(cols.bodies.take(pa.array(alive)))))
    earlier: dict[int, set[int]] = defaultdict(set)
    for group in groups:
        members = alive[group]
        for pos in range(1, members.size):
            earlier[int(members[pos])].update(int(m) for m in members[:pos])
    contexts = ContextCache(cols)
    removed: dict[int, int] = {}
    for later in sorted(earlier):
        for cand in sorted(earlier[later]):
            if cand in removed or not _may_match(cols, later, cand):
                continue
            body = jaccard(
                shingles(cols.bodies[later].as_py()), shingles(cols.bodies[cand].as_py())
            )
            ca, cb = contexts.text(cand), contexts.text(later)
            if body >= threshold and (
                (not ca and not cb)
                or (
                    ca
                    and cb
                    and jaccard(contexts.shingles(cand), contexts.shingles(later)) >= threshold
                )
            ):
                removed[later] = cand
                break
    return removed


def _templated_columns(n: int) -> DedupColumns:
    """Templated exam-like questions: one LSH group of hundreds, near and far pairs mixed."""
    rng = np.random.default_rng(17)
    words = ["fièvre", "toux", "douleur", "œdème", "dyspnée", "ictère", "asthénie", "prurit"]
    stem = "Un patient de {age} ans consulte pour {a} et {b} depuis trois jours. Quel examen ? "
    texts = []
    for i in range(n):
        a, b = rng.choice(words, 2)
        texts.append(stem.format(age=40 + i % 3, a=a, b=b) + ("" if i % 4 else f"note {i % 7}"))
    texts[5:9] = ["", "é", "abc", "abcd"]  # shorter than a shingle: padded, as shingles() does
    contexts = [None if i % 3 else f"Contexte {i % 2} commun et assez long." for i in range(n)]
    return DedupColumns(
        ids=[f"r:{i}" for i in range(n)],
        splits=["test" if i < n // 5 else "train" for i in range(n)],
        tasks=["mcq" if i % 5 else "oeq" for i in range(n)],
        contexts=contexts,
        bodies=normalize_array(pa.array(texts)),
    )


def test_shingle_sets_equal_shingles_per_text(monkeypatch) -> None:
    monkeypatch.setattr(dedup, "CHUNK_RECORDS", 7)  # several chunks, one of them short
    texts = [*TRICKY, "é", "abc", "abcd", "abcde", "ééé", "répété répété répété"] * 2
    indptr, grams = shingle_sets(pa.array(texts).slice(2))  # an offset into the buffers
    got = [grams[indptr[i] : indptr[i + 1]].tolist() for i in range(len(texts) - 2)]
    assert got == [shingles(t).tolist() for t in texts[2:]]


def test_near_pairs_equal_pairwise_jaccard_on_a_large_group(monkeypatch) -> None:
    cols = _templated_columns(240)
    groups = candidate_groups(band_keys(signatures(cols.bodies)))
    assert max(g.size for g in groups) >= 80  # the worst case: one big templated group
    sets = [shingles(text) for text in cols.bodies.to_pylist()]
    for threshold in (0.9, 0.75):
        expected = sorted(
            {
                (int(g[j]), int(g[i]))
                for g in groups
                for j in range(g.size)
                for i in range(j)
                if jaccard(sets[g[i]], sets[g[j]]) >= threshold
            }
        )
        assert len(expected) > 100
        for pair_block, entry_block in [(dedup.PAIR_BLOCK, dedup.ENTRY_BLOCK), (50, 2_000)]:
            # the second: many small sparse products, the big group in stripes of one row
            monkeypatch.setattr(dedup, "PAIR_BLOCK", pair_block)
            monkeypatch.setattr(dedup, "ENTRY_BLOCK", entry_block)
            later, cand = near_pairs(cols.bodies, groups, threshold)
            assert list(zip(later.tolist(), cand.tolist(), strict=True)) == expected


def test_near_removals_equal_the_pairwise_method() -> None:
    cols = _templated_columns(240)
    alive = np.arange(3, 240, dtype=np.int64)  # positions differ from indexes
    for threshold in (0.9, 0.75):
        got = near_removals(cols, alive, threshold)
        assert len(got) > 20
        assert got == _plain_near_removals(cols, alive, threshold)
