"""Strict parsing of multiple-choice outputs, faithful to the authors' Evaluate.py.

An output is valid only if, after upper-casing and stripping, every alphabetic character is one of
the item's option letters and every other character is one of ``, ; / | + space newline . ( ) :``.
Anything else (a word, a digit, an accented letter, a letter outside the options) makes the whole
output invalid: ``parse_letters`` returns ``None`` and the item is scored wrong. Letters are
deduplicated in order of appearance; single-answer items need exactly one distinct letter.

One deliberate naming difference: the official code returns an empty list both for invalid output
and for output with no letter; both mean "scored wrong" there, and both give ``None`` here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ALLOWED_NON_LETTERS: frozenset[str] = frozenset(",;/|+ \n.():")


def parse_letters(
    output: str | None, letters: Sequence[str], single: bool
) -> tuple[str, ...] | None:
    """Letters predicted by a raw model output, or None when the output is invalid."""
    if output is None:
        return None
    text = output.upper().strip()
    valid = {letter.strip().upper() for letter in letters if letter.strip()}
    for char in text:
        if char.isalpha():
            if char not in valid:
                return None
        elif char not in ALLOWED_NON_LETTERS:
            return None
    found = tuple(dict.fromkeys(char for char in text if char in valid))
    if not found:
        return None
    if single and len(found) != 1:
        return None
    return found


def normalize_gold(answer: str | Sequence[str]) -> tuple[str, ...]:
    """Gold letters: split on whitespace/commas, upper-case, drop empties (official rule)."""
    items = re.split(r"[\s,]+", answer) if isinstance(answer, str) else list(answer)
    return tuple(item.strip().upper() for item in items if item.strip())


def split_letters(letters: str) -> tuple[str, ...]:
    """Option letters from the prediction file's comma-joined ``letters`` column."""
    return tuple(part.strip().upper() for part in letters.split(",") if part.strip())
