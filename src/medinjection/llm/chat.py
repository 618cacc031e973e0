"""A chat function for callers that want texts, not requests (the LLM judge): one client, reused.

`ChatFn` answers lists of conversations through one `LLMClient`, opened at its first call and
reused by every later call, so the response store, the HTTP pool and, for a self-hosted model, the
`vllm serve` process are set up once per stage run; `close()` (or leaving its `with` block) closes
the client and stops that server, once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medinjection.llm.client import LLMClient, Usage, open_client
from medinjection.llm.request import ChatRequest
from medinjection.llm.vllm_server import serve_vllm

log = logging.getLogger(__name__)

Conversation = list[dict[str, str]]


class Refused(str):
    """The empty reply text of a request the API refused for good; `.error` says why."""

    error: str

    def __new__(cls, error: str) -> Refused:
        text = super().__new__(cls, "")
        text.error = error
        return text


class ChatFn:
    """Callable: a list of conversations -> the reply texts in order, through one client.

    `connect` opens the client (and whatever it owns, such as a vllm server); it is called once,
    at the first call. Usage counters accumulate on `.usage` over all calls.
    """

    def __init__(
        self, connect: Callable[[], LLMClient], model: str, params: Mapping[str, Any]
    ) -> None:
        self.model = model
        self.params = dict(params)
        self._connect = connect
        self._client: LLMClient | None = None
        self._closed = False

    @property
    def usage(self) -> Usage:
        """The client's counters so far (zeros before the first call)."""
        return self._client.usage if self._client is not None else Usage()

    def __call__(self, conversations: Sequence[Conversation]) -> list[str]:
        """Answer every conversation; an empty answer (no choice) is logged and '', a request
        the API refused is a `Refused` ('' carrying the error) so callers count it apart."""
        if self._closed:
            raise RuntimeError(f"chat function of {self.model!r} used after close()")
        if self._client is None:
            self._client = self._connect()
        requests = [ChatRequest(self.model, tuple(conv), self.params) for conv in conversations]
        results = self._client.complete_many(requests)
        empty = [r.key for r in results if not r.text and r.error is None]
        if empty:
            log.warning("llm: %d empty responses, first key %s", len(empty), empty[0])
        return [Refused(r.error) if r.error is not None else r.text or "" for r in results]

    def close(self) -> None:
        """Close the client (and stop the server it owns); later calls raise."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> ChatFn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _params(max_tokens: int, temperature: float) -> dict[str, Any]:
    return {"temperature": temperature, "max_tokens": max_tokens}


def make_chat_fn(
    endpoint: Mapping[str, Any],
    model: str,
    mode: str,
    replay_file: str | None,
    cache_path: str,
    max_tokens: int,
    temperature: float = 0.0,
) -> ChatFn:
    """A chat function over an endpoint (llm.endpoints entry; a `serve` block starts vllm
    serve in live mode, once) with the cached, replayable client."""
    connect = functools.partial(open_client, dict(endpoint), mode, replay_file, cache_path)
    return ChatFn(connect, model, _params(max_tokens, temperature))


def served_chat_fn(
    model_path: Path,
    served_name: str,
    log_path: Path,
    cache_path: str,
    max_tokens: int,
    serve_options: Mapping[str, Any],
    base_endpoint: Mapping[str, Any] | None = None,
    temperature: float = 0.0,
) -> ChatFn:
    """A chat function over a `vllm serve` of `model_path` started for it (at its first call, on
    a free local port; `serve_options`: serve_vllm's keyword arguments) and stopped by close()."""

    def connect() -> LLMClient:
        server = contextlib.ExitStack()
        try:
            endpoint = server.enter_context(
                serve_vllm(model_path, served_name, log_path, base_endpoint, **serve_options)
            )
            return open_client(endpoint, "live", None, cache_path, closing=server)
        except BaseException:
            server.close()
            raise

    return ChatFn(connect, served_name, _params(max_tokens, temperature))
