"""What a prediction backend reads and returns: `PromptItem` in, `Prediction` out.

Its own module so that the backends (`transformers_backend`, `vllm_backend`) and the predict
stage (`medinjection.stages.predict`) share the types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from medinjection.records import Record


@dataclass(frozen=True)
class PromptItem:
    """One test record ready for decoding: chat messages and its generation budget."""

    record: Record
    messages: list[dict[str, str]]
    letters: tuple[str, ...]
    max_new_tokens: int
    permutation: int = 0  # 0 = original option order, k >= 1 = k-th shuffled rerun
    option_order: str = ""  # original letters in their shown positions ("C,A,B,D")


@dataclass(frozen=True)
class Prediction:
    """Backend output for one item (constrained/probs are None for open questions)."""

    greedy: str
    constrained: str | None
    letter_probs: dict[str, float] | None
