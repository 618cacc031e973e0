"""OpenAI-compatible LLM client (cache, replay, throttling, batch), and the requests and reply
checks of the translation and synthesis stages (medinjection.stages).

The re-exports are lazy, so that importing a module of the package never imports openai by itself.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = "medinjection.llm.chat" if name == "make_chat_fn" else "medinjection.llm.client"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'medinjection.llm' has no attribute {name!r}")
