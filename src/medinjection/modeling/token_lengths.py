"""Token-length distribution of a mixture under the model's tokenizer and chat template.

TRL truncates rows longer than `max_length` silently (keep_start), so the study's choice of
max_length is checked against the measured lengths: the rule `token_lengths` writes, per split,
percentiles of the templated sequence length (what TRL tokenizes), of the answer part (what
`loss_on: answer` trains on) and how many rows exceed max_length.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)


def read_messages(path: Path) -> list[list[dict[str, str]]]:
    """The `messages` of every row of a mixture JSONL file."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                messages = json.loads(line).get("messages")
                if not messages:
                    raise ValueError(f"{path}:{line_no}: row has no 'messages'")
                rows.append(messages)
    return rows


TOKENIZE_CHUNK = 2048  # conversations rendered and tokenized per batch call


def _templated_lengths(
    tokenizer: Any, conversations: Sequence[Sequence[Mapping[str, str]]], generation_prompt: bool
) -> list[int]:
    """Token count of each conversation rendered by the chat template.

    The same count as ``apply_chat_template(..., tokenize=True)``, which renders the text and
    tokenizes it without adding special tokens; rendering first and tokenizing in batches lets
    a fast tokenizer do the work in one call per chunk (a 33,493-row mixture: ~2.5x less CPU).
    """
    lengths: list[int] = []
    for start in range(0, len(conversations), TOKENIZE_CHUNK):
        texts = [
            tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=generation_prompt
            )
            for messages in conversations[start : start + TOKENIZE_CHUNK]
        ]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        lengths.extend(len(ids) for ids in encoded)
    return lengths


def sequence_lengths(
    tokenizer: Any, conversations: Sequence[Sequence[Mapping[str, str]]]
) -> tuple[list[int], list[int]]:
    """Templated token count of each conversation, and of its final (assistant) turn.

    The answer part is counted as TRL's prompt-completion path does: the whole conversation
    minus the prompt rendered with the generation prompt (so `content<|im_end|>\\n`).
    """
    totals = _templated_lengths(tokenizer, conversations, False)
    prompts = _templated_lengths(tokenizer, [list(m)[:-1] for m in conversations], True)
    return totals, [total - prompt for total, prompt in zip(totals, prompts, strict=True)]


def count_over_length(
    tokenizer: Any, conversations: Sequence[Sequence[Mapping[str, str]]], max_length: int
) -> int:
    """How many conversations TRL will truncate (templated token count > max_length)."""
    return sum(
        length > max_length for length in _templated_lengths(tokenizer, conversations, False)
    )


def length_summary(lengths: Sequence[int], max_length: int | None = None) -> dict[str, Any]:
    """Count, mean, min, percentiles, max, total tokens (and rows over max_length if given)."""
    values = np.asarray(lengths, dtype=np.int64)
    if values.size == 0:
        return {"n": 0}
    summary: dict[str, Any] = {
        "n": int(values.size),
        "tokens": int(values.sum()),
        "mean": round(float(values.mean()), 2),
        "min": int(values.min()),
        **{f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES},
        "max": int(values.max()),
    }
    if max_length is not None:
        over = int((values > max_length).sum())
        summary["n_over_max_length"] = over
        summary["share_over_max_length"] = round(over / values.size, 6)
        summary["tokens_cut"] = int(np.clip(values - max_length, 0, None).sum())
    return summary
