"""A chat request, its cache/replay key, and the parsed result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from openai.types.chat import ChatCompletion

Message = dict[str, str]


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completion request: model, messages and the sampling/format params sent as-is."""

    model: str
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON body the SDK sends (model, messages, params)."""
        return {"model": self.model, "messages": [dict(m) for m in self.messages], **self.params}

    @cached_property
    def body_json(self) -> str:
        """`body()` as JSON (sorted keys, UTF-8 kept), encoded once: the batch line and the
        response store's request column both hold this text."""
        return json.dumps(self.body(), ensure_ascii=False, sort_keys=True)


def request_key(base_url: str, body: Mapping[str, Any]) -> str:
    """sha256 of (base_url, model, messages, params): the cache and replay key of a request."""
    blob = json.dumps(
        {"base_url": base_url.rstrip("/"), "body": body},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChatResult:
    """The answer to one request: text of the first choice, finish reason, raw body.

    `error` is set (and text None) when the API refused this very request for good (HTTP 400/422:
    too long, content filter): the stages quarantine such items with that reason.
    """

    key: str
    text: str | None
    finish_reason: str | None
    cached: bool
    body: dict[str, Any]
    error: str | None = None


def result_from_body(key: str, body: dict[str, Any], cached: bool) -> ChatResult:
    """Parse a chat.completion body with the SDK's own model into a ChatResult."""
    completion = ChatCompletion.model_validate(body)
    if not completion.choices:
        return ChatResult(key, None, None, cached, body)
    choice = completion.choices[0]
    return ChatResult(key, choice.message.content, choice.finish_reason, cached, body)


def estimated_tokens(request: ChatRequest) -> int:
    """Rough token cost for the rate limiter: ~4 characters a token plus the output budget."""
    chars = sum(len(m.get("content", "")) for m in request.messages)
    return chars // 4 + int(request.params.get("max_tokens", 0))
