"""Structure-preserving EN->FR translation of QA records, one JSON-schema request per record.

Only text travels: question, context, option texts keyed by their letter, and open answers. Option
letters and multiple-choice gold letters are never sent and never changed; every reply is checked
against the source structure, retried once with feedback, then quarantined with its reasons.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from medinjection.llm.client import ChatRequest, ChatResult, LLMClient
from medinjection.llm.structured import (
    Report,
    ask_with_one_retry,
    clean_text,
    json_schema_format,
    parse_reply,
    strict_object,
)
from medinjection.records import (
    Record,
    validation_errors,
)

log = logging.getLogger(__name__)

# Free-text meta fields translated with the record when present (PubMedQA's long answer).
TRANSLATABLE_META: tuple[str, ...] = ("long_answer",)

TRANSLATION_SYSTEM = (
    "You are a professional medical translator. Translate every string value of the JSON object "
    "you receive from English into French as used by French physicians. Keep exactly the same "
    "keys, including every option letter; never add, drop, merge or reorder options; do not "
    "answer the question or comment on it. Keep numbers, units, laboratory values, doses and "
    "abbreviations exact; write drug names with their French international nonproprietary name. "
    "Reply with the JSON object only."
)


def translation_payload(record: Record) -> dict[str, Any]:
    """The English text of a record as JSON: question, context, options by letter, open answer."""
    payload: dict[str, Any] = {"question": record.question}
    if record.context:
        payload["context"] = record.context
    if record.options:
        payload["options"] = {letter: text for letter, text in record.options}
    if record.task == "oeq":
        payload["answer"] = record.answer
    for name in TRANSLATABLE_META:
        value = record.meta.get(name)
        if isinstance(value, str) and value.strip():
            payload[name] = value
    return payload


def payload_schema(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON schema mirroring a payload: the same keys, the same option letters, strings only."""
    properties: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            properties[key] = strict_object({letter: {"type": "string"} for letter in value})
        else:
            properties[key] = {"type": "string"}
    return strict_object(properties)


def payload_sha256(payload: dict[str, Any]) -> str:
    """Hash of the English text that was translated (provenance in meta.en_sha256)."""
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def translation_request(
    record: Record, model: str, temperature: float, max_tokens: int
) -> ChatRequest:
    """The chat request translating one record (also used by the demo recorder)."""
    return payload_request(translation_payload(record), model, temperature, max_tokens)


def payload_request(
    payload: dict[str, Any], model: str, temperature: float, max_tokens: int
) -> ChatRequest:
    """The translation request of any {key: English text} payload (records, test segments)."""
    messages = (
        {"role": "system", "content": TRANSLATION_SYSTEM},
        {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
    )
    params = {
        "temperature": temperature,
        "max_tokens": max_tokens,
        "response_format": json_schema_format("translation", payload_schema(payload)),
    }
    return ChatRequest(model, messages, params)


def _reply_errors(payload: dict[str, Any], reply: dict[str, Any]) -> list[str]:
    errors = []
    missing, extra = sorted(set(payload) - set(reply)), sorted(set(reply) - set(payload))
    if missing or extra:
        errors.append(f"keys differ from the source: missing {missing}, unexpected {extra}")
    for key in set(payload) & set(reply):
        if isinstance(payload[key], dict):
            got = reply[key]
            if not isinstance(got, dict) or sorted(got) != sorted(payload[key]):
                letters = sorted(got) if isinstance(got, dict) else got
                errors.append(f"option letters {letters} differ from {sorted(payload[key])}")
            elif any(clean_text(text) is None for text in got.values()):
                errors.append("empty option text")
        elif clean_text(reply[key]) is None:
            errors.append(f"empty or non-string {key}")
    return errors


def _reply_text(value: Any) -> str:
    """A text of a reply that _reply_errors found non-empty."""
    text = clean_text(value)
    if text is None:
        raise ValueError(f"reply text {value!r} is empty: _reply_errors should have said so")
    return text


def apply_translation(
    record: Record, reply: dict[str, Any], model: str
) -> tuple[Record | None, list[str]]:
    """The French record built from a reply, or None and why the reply breaks the structure."""
    payload = translation_payload(record)
    errors = _reply_errors(payload, reply)
    if errors:
        return None, errors
    options = None
    if record.options is not None:
        options = tuple(
            (letter, _reply_text(reply["options"][letter])) for letter, _ in record.options
        )
    meta = dict(record.meta)
    meta.update({name: clean_text(reply[name]) for name in TRANSLATABLE_META if name in payload})
    meta.update(translation_model=model, en_id=record.id, en_sha256=payload_sha256(payload))
    translated = replace(
        record,
        origin="translated",
        language="fr",
        question=_reply_text(reply["question"]),
        context=clean_text(reply["context"]) if "context" in payload else record.context,
        options=options,
        answer=_reply_text(reply["answer"]) if record.task == "oeq" else record.answer,
        meta=meta,
    )
    errors = validation_errors(translated)
    return (None, errors) if errors else (translated, [])


def _judge(record: Record, result: ChatResult, model: str) -> tuple[Record | None, list[str]]:
    reply, errors = parse_reply(result)
    if reply is None:
        return None, errors
    return apply_translation(record, reply, model)


class _Check:
    """Why a reply cannot translate `record` (the client caches only replies with no reason).

    Remembers its last verdict, so the stage reuses the client's judgement of the same reply
    (`outcome`) instead of judging every reply twice.
    """

    def __init__(self, record: Record, model: str) -> None:
        self.record = record
        self.model = model
        self._last: tuple[ChatResult, tuple[Record | None, list[str]]] | None = None

    def __call__(self, result: ChatResult) -> list[str]:
        outcome = _judge(self.record, result, self.model)
        self._last = (result, outcome)
        return outcome[1]

    def outcome(self, result: ChatResult) -> tuple[Record | None, list[str]]:
        """`_judge(record, result, model)`, from the last call when it judged this very result."""
        if self._last is not None and self._last[0] is result:
            return self._last[1]
        return _judge(self.record, result, self.model)


def translate_records(
    records: Sequence[Record],
    client: LLMClient,
    model: str,
    temperature: float,
    max_tokens: int,
    report: Report,
) -> list[Record]:
    """Translate records (one retry with feedback for unusable replies, then quarantine)."""
    requests = [translation_request(r, model, temperature, max_tokens) for r in records]
    checks = [_Check(record, model) for record in records]
    _, outcomes, retry = ask_with_one_retry(
        client, requests, checks, lambda i, result: checks[i].outcome(result), "translate"
    )
    retried = set(retry)
    # refused for good first, then the replies still unusable after their retry
    lost = [i for i in range(len(records)) if i not in retried] + retry
    for i in lost:
        if outcomes[i][0] is None:
            report.quarantine(records[i].id, outcomes[i][1], source=records[i].source)
    report.counts["retried"] = len(retry)
    return [out for out, _ in outcomes if out is not None]
