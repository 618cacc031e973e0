"""Constrained decoding of option letters under two protocols (`evaluation.protocol`).

- ``official``: the authors' Evaluate.py. One static allowed set per item, the same at every
  step: the last token of each option letter and of " "+letter, the last token of each separator
  (",", ", ", " ", ",\n"), the tokenizer's eos and every special token of the tokenizer's
  special-tokens map whose text names eos/eot/im_end. MCQU takes one step over that set (so ","
  or an empty answer can come out, and scores 0); MCQ takes up to 2 x options steps, repeats
  allowed. Letter probabilities: softmax over every letter token (bare and spaced), summed per
  letter. Taking only the last token of each separator is Evaluate.py's rule: with a tokenizer
  that splits ",\n" into "," + "\n", a bare newline is allowed (an empty answer once stripped;
  the demo's tiny model gave it to every item before its weights were given a wider spread).
- ``letters``: this project's earlier variant. MCQU is the argmax over letter tokens only (always
  a letter); MCQ bans a letter once generated (transformers) or follows a regex of distinct
  letters in option order joined by ", " (vLLM: the two backends differ there). Letter
  probabilities: softmax over the bare letter tokens.

docs/deviations.md lists what differs from the authors' code under each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from transformers import LogitsProcessor

Protocol = Literal["official", "letters"]
PROTOCOLS: tuple[str, ...] = ("official", "letters")

# Separators the official script allows between letters ("A, C", "A,C", "A C", "A,\nC").
SEPARATORS: tuple[str, ...] = (",", ", ", " ", ",\n")
# Evaluate.py adds every special token whose text contains one of these to the allowed set.
STOP_TAGS: tuple[str, ...] = ("eos", "eot", "im_end")


def _is_protocol(protocol: str) -> TypeGuard[Protocol]:
    return protocol in PROTOCOLS


def check_protocol(protocol: str) -> Protocol:
    """The protocol name, or an error listing the valid ones."""
    if not _is_protocol(protocol):
        raise ValueError(f"unknown evaluation.protocol {protocol!r}; valid: {list(PROTOCOLS)}")
    return protocol


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


def official_separator_ids(tokenizer: Any) -> tuple[int, ...]:
    """The last token of each separator, as Evaluate.py takes them (sorted, distinct)."""
    return tuple(sorted({_last_token(tokenizer, text) for text in SEPARATORS}))


def official_stop_ids(tokenizer: Any) -> tuple[int, ...]:
    """The tokenizer's eos plus each special-tokens-map entry naming eos/eot/im_end (sorted).

    Only string entries count (Evaluate.py skips lists such as additional_special_tokens).
    """
    ids = set() if tokenizer.eos_token_id is None else {tokenizer.eos_token_id}
    for value in (tokenizer.special_tokens_map or {}).values():
        if isinstance(value, str) and any(tag in value.lower() for tag in STOP_TAGS):
            token_id = tokenizer.convert_tokens_to_ids(value)
            if isinstance(token_id, int) and token_id >= 0:
                ids.add(token_id)
    return tuple(sorted(ids))


def official_allowed_ids(tokenizer: Any, tokens: LetterTokens) -> tuple[int, ...]:
    """Evaluate.py's static allowed set of one item: letters, separators, stops (sorted)."""
    letters = {i for variant in tokens.variants for i in variant}
    return tuple(
        sorted(letters | set(official_separator_ids(tokenizer)) | set(official_stop_ids(tokenizer)))
    )


def letter_ids(tokens: LetterTokens) -> tuple[int, ...]:
    """Every letter token id (bare and spaced), sorted and distinct."""
    return tuple(sorted({i for variant in tokens.variants for i in variant}))


def letter_probabilities(
    logits: Any, tokens: LetterTokens, protocol: Protocol = "letters"
) -> dict[str, float]:
    """First-step letter probabilities of one row of logits.

    ``letters``: softmax over the bare letter tokens. ``official``: softmax over every letter
    token (bare and spaced), summed per letter (Evaluate.py's class_probabilities).
    """
    import torch

    ids = list(tokens.bare) if protocol == "letters" else list(letter_ids(tokens))
    probs = torch.softmax(logits[ids].float(), dim=-1).tolist()
    return merge_letter_probs(ids, probs, tokens)


def merge_letter_probs(
    ids: Sequence[int], probs: Sequence[float], tokens: LetterTokens
) -> dict[str, float]:
    """Per-letter sums of token probabilities (ids outside the letters are ignored)."""
    out = dict.fromkeys(tokens.letters, 0.0)
    for token_id, p in zip(ids, probs, strict=True):
        letter = tokens.letter_of(token_id)
        if letter is not None:
            out[letter] += float(p)
    return out


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


def argmax_allowed(logits: Any, allowed: Sequence[int]) -> int:
    """The allowed id with the highest logit (one step of a static mask; first id on ties)."""
    return int(allowed[int(logits[list(allowed)].float().argmax())])


class AllowedTokens(LogitsProcessor):
    """LogitsProcessor: one static allowed set per batch row, the same at every step."""

    def __init__(self, rows: Sequence[Sequence[int]]) -> None:
        self.rows = [list(row) for row in rows]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Scores with -inf everywhere outside each row's allowed ids."""
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row, allowed in enumerate(self.rows):
            mask[row, allowed] = 0.0
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
