"""API prices (config llm.prices) and the cost of token counts, direct or through a batch API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Submit = Literal["direct", "batch"]
SUBMITS: tuple[str, ...] = ("direct", "batch")


@dataclass(frozen=True)
class Price:
    """USD per million input/output tokens, and the batch API's discount (0.5 = half price)."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    batch_discount: float

    def cost(self, prompt_tokens: int, completion_tokens: int, submit: str) -> float:
        """Estimated USD for these token counts sent `submit` (direct or batch)."""
        if submit not in SUBMITS:
            raise ValueError(f"unknown submit mode {submit!r}; valid: {list(SUBMITS)}")
        usd = (
            prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok
        ) / 1e6
        return usd * (1.0 - self.batch_discount) if submit == "batch" else usd


def price_for(prices: Mapping[str, Mapping[str, Any]], model: str) -> Price:
    """The price of `model` from config llm.prices; an unknown model lists the priced ones."""
    if model not in prices:
        raise KeyError(
            f"llm.prices has no entry for model {model!r} (priced: {sorted(prices)}); add its "
            "input/output USD per million tokens and batch discount to the config"
        )
    entry = prices[model]
    return Price(
        float(entry["input_usd_per_mtok"]),
        float(entry["output_usd_per_mtok"]),
        float(entry.get("batch_discount", 0.0)),
    )


def usage_cost(
    usage: Mapping[str, int], price: Mapping[str, Any] | None, submit: str
) -> dict[str, Any]:
    """Cost lines for a usage report: tokens actually sent (cache hits are free) and USD."""
    priced = None if price is None else price_for({"model": price}, "model")
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {
        "submit": submit,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "estimated_usd": None
        if priced is None
        else round(priced.cost(prompt, completion, submit), 6),
    }
