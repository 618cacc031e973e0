"""Strict multiple-choice parser: the official Evaluate.py semantics, case by case."""

from __future__ import annotations

import pytest

from medinjection.evaluation.parsing import normalize_gold, parse_letters, split_letters

ABCDE = ("A", "B", "C", "D", "E")


@pytest.mark.parametrize(
    ("output", "single", "expected"),
    [
        ("A", True, ("A",)),
        (" b ", True, ("B",)),  # upper-cased and stripped
        ("(C)", True, ("C",)),
        ("C.", True, ("C",)),
        ("Réponse : A", True, None),  # a word: letters outside the class set
        ("A, C", True, None),  # two letters for a single-answer item
        ("A, A", True, ("A",)),  # duplicates collapse to one letter
        ("F", True, None),  # letter outside the options
        ("", True, None),  # nothing to read
        (None, True, None),
        ("A, C", False, ("A", "C")),
        ("C;A", False, ("C", "A")),  # order of appearance kept
        ("A/B|C+D", False, ("A", "B", "C", "D")),
        ("A\nB", False, ("A", "B")),
        ("(A) (C):", False, ("A", "C")),
        ("A, C, A", False, ("A", "C")),
        ("A-C", False, None),  # '-' is not an allowed separator
        ("A, 2", False, None),  # digits are rejected
        ("É", False, None),  # accented letters are alphabetic and outside the set
        ("A & B", False, None),
        (" ,. ", False, None),  # only separators: no letter
    ],
)
def test_parse_letters_cases(output, single, expected):
    assert parse_letters(output, ABCDE, single) == expected


def test_parse_letters_respects_the_item_letters():
    assert parse_letters("D", ("A", "B", "C"), single=True) is None
    assert parse_letters("d", ("a", "b", "c", "d"), single=True) == ("D",)
    assert parse_letters("J", tuple("ABCDEFGHIJ"), single=True) == ("J",)


@pytest.mark.parametrize(
    ("gold", "expected"),
    [
        ("A,C", ("A", "C")),
        ("a, c", ("A", "C")),
        ("B C\nD", ("B", "C", "D")),
        (["b", " e "], ("B", "E")),
        ("", ()),
    ],
)
def test_normalize_gold(gold, expected):
    assert normalize_gold(gold) == expected


def test_split_letters():
    assert split_letters("A,B,C,D,E") == ABCDE
    assert split_letters("") == ()
