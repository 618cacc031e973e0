"""Structured (JSON-schema) replies: the request format, parsing, one corrective retry, reports."""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from medinjection.llm.request import ChatRequest, ChatResult

if TYPE_CHECKING:  # the client imports nothing of this module; only its type is needed here
    from medinjection.llm.client import LLMClient

log = logging.getLogger(__name__)

FEEDBACK = (
    "Your previous reply could not be used: {reasons}. Reply again with the complete JSON "
    "object only, following the schema exactly."
)


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`response_format` asking for strict JSON that follows `schema`."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def strict_object(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-schema object whose listed properties are all required and nothing else allowed."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


def parse_reply(result: ChatResult) -> tuple[dict[str, Any] | None, list[str]]:
    """The reply's JSON object, or None and the reasons it is unusable."""
    if getattr(result, "error", None):
        return None, [f"request refused by the API: {result.error}"]
    if result.finish_reason == "length":
        return None, ["reply truncated at max_tokens (finish_reason=length)"]
    if not result.text or not result.text.strip():
        return None, [f"empty reply (finish_reason={result.finish_reason})"]
    try:
        value = json.loads(result.text)
    except json.JSONDecodeError as err:
        return None, [f"reply is not valid JSON: {err}"]
    if not isinstance(value, dict):
        return None, [f"reply is JSON {type(value).__name__}, not an object"]
    return value, []


def clean_text(value: Any) -> str | None:
    """A stripped NFC string, or None when the value is not a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        return None
    return unicodedata.normalize("NFC", value.strip())


def worth_retrying(result: ChatResult) -> bool:
    """False for requests the API refused for good: a corrective retry would be refused too."""
    return getattr(result, "error", None) is None


def with_feedback(request: ChatRequest, reply: str | None, reasons: Sequence[str]) -> ChatRequest:
    """The retry of an unusable reply: the same conversation plus the reply and what was wrong."""
    messages = (
        *request.messages,
        {"role": "assistant", "content": reply or ""},
        {"role": "user", "content": FEEDBACK.format(reasons="; ".join(reasons))},
    )
    return ChatRequest(request.model, messages, request.params)


T = TypeVar("T")
# a reply's use: (what it makes, or None when unusable; the reasons it is unusable)
Outcome = tuple[T | None, list[str]]


def ask_with_one_retry(
    client: LLMClient,
    requests: Sequence[ChatRequest],
    checks: Sequence[Callable[[ChatResult], Sequence[str]]],
    judge: Callable[[int, ChatResult], Outcome[T]],
    stage: str,
) -> tuple[list[ChatResult], list[Outcome[T]], list[int]]:
    """Send `requests` (the client caches only replies their `checks` pass), `judge` each reply,
    and ask once more, with feedback, for each unusable reply the API did not refuse.

    Returns the first replies, each request's final outcome (a retried one that still fails has
    the reasons of both attempts, prefixed `attempt 1: ` / `attempt 2: `) and the retried indices.
    """
    first = client.complete_many(requests, checks)
    outcomes = [judge(i, result) for i, result in enumerate(first)]
    retry = [i for i, (made, _) in enumerate(outcomes) if made is None and worth_retrying(first[i])]
    if retry:
        log.info("%s: %d replies unusable, retrying once with feedback", stage, len(retry))
        second = client.complete_many(
            [with_feedback(requests[i], first[i].text, outcomes[i][1]) for i in retry],
            [checks[i] for i in retry],
        )
        for i, result in zip(retry, second, strict=True):
            made, errors = judge(i, result)
            if made is None:
                errors = [f"attempt 1: {e}" for e in outcomes[i][1]] + [
                    f"attempt 2: {e}" for e in errors
                ]
            outcomes[i] = (made, errors)
    return first, outcomes, retry


@dataclass
class Report:
    """Usage and quarantine report of one translation shard or synthesis job (written as JSON)."""

    stage: str
    model: str
    counts: dict[str, int] = field(default_factory=dict)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def quarantine(self, item_id: str, reasons: Sequence[str], **details: Any) -> None:
        """Record one rejected item with its reasons (never dropped silently)."""
        self.quarantined.append({"id": item_id, "reasons": list(reasons), **details})

    def write_quarantine(self, path: str | Path) -> None:
        """Write the quarantined items as JSON lines (one item with its reasons a line)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for item in self.quarantined:
                handle.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")

    def write(self, path: str | Path) -> None:
        """Write the report as indented JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "stage": self.stage,
            "model": self.model,
            **self.extra,
            "counts": {**self.counts, "quarantined": len(self.quarantined)},
            "usage": self.usage,
            "quarantined": self.quarantined,
        }
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


class QuarantineRateError(RuntimeError):
    """An LLM stage lost more of its items than its config allows (the run stops)."""


# A translation shard stops on its own only when its loss is over the limit beyond chance: the
# probability of losing that many of its items, were each lost at exactly the limit rate, is
# below this. A shard of a small source holds ~60 items, where 3 losses (5%) happen by chance at
# a 1% loss rate; the source's exact rate is checked when its shards are gathered.
SHARD_CHANCE = 0.01


def loss_beyond_chance(lost: int, total: int, max_rate: float, chance: float) -> bool:
    """True when `lost` of `total` exceeds `max_rate` and P(Binomial(total, max_rate) >= lost)
    is below `chance` (a limit of 0 allows no loss at all)."""
    if total == 0 or lost <= max_rate * total:
        return False
    if max_rate <= 0.0:
        return True
    from scipy.stats import binom

    return float(binom.sf(lost - 1, total, max_rate)) < chance


def check_loss_rate(
    what: str,
    lost: int,
    total: int,
    max_rate: float,
    config_key: str,
    report_path: Path | str,
    chance: float | None = None,
) -> None:
    """Raise when `lost / total` exceeds `max_rate`, naming the kept file that lists the reasons.

    With `chance` (a part of a larger whole, checked again as a whole) it raises only when the
    excess is beyond chance (``loss_beyond_chance``).
    """
    rate = lost / total if total else 0.0
    if rate <= max_rate:
        return
    if chance is not None and not loss_beyond_chance(lost, total, max_rate, chance):
        log.info(
            "%s: %d of %d items lost (%.1f%% > %s %.1f%%), within chance for %d items: the "
            "whole source's rate is checked when its shards are gathered",
            what, lost, total, 100 * rate, config_key, 100 * max_rate, total,
        )  # fmt: skip
        return
    raise QuarantineRateError(
        f"{what}: {lost} of {total} items lost ({rate:.1%} > {config_key} {max_rate:.1%}); read "
        f"{report_path} for each item's reasons. Replies that failed the checks were not cached "
        "(they are kept apart in the cache's `rejected` table): fix the endpoint, model or "
        f"prompt, or raise {config_key}, and rerun."
    )
