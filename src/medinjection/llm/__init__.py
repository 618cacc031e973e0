"""OpenAI-compatible LLM client (cache, replay, throttling) and the stages built on it."""

from medinjection.llm.client import (
    ChatRequest,
    ChatResult,
    Endpoint,
    LLMClient,
    LLMError,
    ReplayMissError,
    Usage,
    make_chat_fn,
    open_client,
    request_key,
)

__all__ = [
    "ChatRequest",
    "ChatResult",
    "Endpoint",
    "LLMClient",
    "LLMError",
    "ReplayMissError",
    "Usage",
    "make_chat_fn",
    "open_client",
    "request_key",
]
