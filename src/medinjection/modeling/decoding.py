"""Constrained decoding of option letters, as in the study's evaluation script (Evaluate.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformers import LogitsProcessor

# Separators the official script allows between letters ("A, C", "A,C", "A C", "A,\nC").
SEPARATORS: tuple[str, ...] = (",", ", ", " ", ",\n")


@dataclass(frozen=True)
class LetterTokens:
    """Token ids of one item's option letters: bare ('A') and with a leading space (' A')."""

    letters: tuple[str, ...]
    bare: tuple[int, ...]  # one id per letter, same order: the tokens of `letter_probs`
    variants: tuple[tuple[int, ...], ...]  # per letter: every id that spells that letter

    def letter_of(self, token_id: int) -> str | None:
        """The letter a token spells, or None if it spells no option letter."""
        for letter, ids in zip(self.letters, self.variants, strict=True):
            if token_id in ids:
                return letter
        return None


def _last_token(tokenizer: Any, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise ValueError(f"tokenizer encodes {text!r} to no token")
    return ids[-1]


def letter_tokens(tokenizer: Any, letters: Sequence[str]) -> LetterTokens:
    """Letter token ids the way the official script takes them (last token of 'A' and ' A')."""
    bare = tuple(_last_token(tokenizer, letter) for letter in letters)
    variants = tuple(
        tuple(dict.fromkeys((b, _last_token(tokenizer, f" {letter}"))))
        for letter, b in zip(letters, bare, strict=True)
    )
    if len(set(bare)) != len(bare):
        raise ValueError(f"option letters {list(letters)} do not map to distinct tokens")
    return LetterTokens(letters=tuple(letters), bare=bare, variants=variants)


def separator_ids(tokenizer: Any) -> tuple[int, ...]:
    """Every token id used to spell a separator."""
    ids = (i for text in SEPARATORS for i in tokenizer.encode(text, add_special_tokens=False))
    return tuple(dict.fromkeys(ids))


def stop_ids(tokenizer: Any, generation_eos: int | Sequence[int] | None) -> tuple[int, ...]:
    """End-of-turn ids: the tokenizer's eos plus the generation config's eos ids."""
    extra = [generation_eos] if isinstance(generation_eos, int) else list(generation_eos or ())
    ids = [tokenizer.eos_token_id, *extra]
    return tuple(dict.fromkeys(i for i in ids if i is not None))


def letter_probabilities(logits: Any, tokens: LetterTokens) -> dict[str, float]:
    """Softmax over the bare letter tokens of one row of first-step logits."""
    import torch

    probs = torch.softmax(logits[list(tokens.bare)].float(), dim=-1)
    return {letter: float(p) for letter, p in zip(tokens.letters, probs, strict=True)}


def argmax_letter(logits: Any, tokens: LetterTokens) -> str:
    """The option letter whose best token has the highest logit (single-answer constraint)."""
    ids = [i for variant in tokens.variants for i in variant]
    best = ids[int(logits[ids].float().argmax())]
    letter = tokens.letter_of(best)
    assert letter is not None
    return letter


class LetterConstraint(LogitsProcessor):
    """LogitsProcessor: only unused option letters, then (optionally) separators and stop ids.

    Each batch row has its own letters; a letter already generated in a row is banned in it.
    """

    def __init__(
        self,
        rows: Sequence[LetterTokens],
        prompt_length: int,
        separators: Sequence[int] = (),
        stops: Sequence[int] = (),
    ) -> None:
        self.rows = list(rows)
        self.prompt_length = prompt_length
        self.always = [*separators, *stops]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Scores with -inf everywhere outside each row's allowed ids."""
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row, tokens in enumerate(self.rows):
            seen = set(input_ids[row, self.prompt_length :].tolist())
            allowed = [
                i for variant in tokens.variants if not seen.intersection(variant) for i in variant
            ]
            mask[row, allowed + self.always] = 0.0
        return scores + mask


def multi_answer_regex(letters: Sequence[str]) -> str:
    """Regex of 'A', 'A, C', ...: one or more distinct letters in option order, ', '-separated."""
    if not letters:
        raise ValueError("no option letters")
    branches = []
    for i, first in enumerate(letters):
        tail = "".join(f"(, {re.escape(letter)})?" for letter in letters[i + 1 :])
        branches.append(re.escape(first) + tail)
    return "(" + "|".join(branches) + ")"
