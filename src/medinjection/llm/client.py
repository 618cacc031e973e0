"""One client for any OpenAI-compatible chat endpoint: cache, replay, concurrency, rate limit.

Live and replay modes share every step (request building, cache, the `openai` SDK with its retry
and parsing code) and differ only in the httpx2 transport: live uses the network, replay uses an
`httpx2.MockTransport` that answers from a recorded JSONL file. Requests not in the cache go out
either directly (a thread pool of `max_concurrency` under the rate limiter; the SDK retries
429/5xx/timeouts with backoff honouring Retry-After; malformed bodies are retried here) or, with
submit='batch' in live mode, through the Batch API (medinjection.llm.batch).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeGuard, get_args

import httpx2
import openai
import pydantic

from medinjection.api_keys import api_key_problem
from medinjection.llm.batch import BatchError, BatchRunner, BatchSettings, OpenAIBatches
from medinjection.llm.cost import SUBMITS
from medinjection.llm.progress import Progress
from medinjection.llm.ratelimit import RateLimiter
from medinjection.llm.replay import RECORD_HINT, load_recording, replay_transport
from medinjection.llm.request import (
    ChatRequest,
    ChatResult,
    estimated_tokens,
    request_key,
    result_from_body,
)
from medinjection.llm.store import ResponseStore, StoredResponse, open_store
from medinjection.llm.vllm_server import served_endpoint

log = logging.getLogger(__name__)

Mode = Literal["live", "replay"]
MODES: tuple[str, ...] = get_args(Mode)


def _is_mode(mode: str) -> TypeGuard[Mode]:
    return mode in MODES


# Stop sending after this many failed requests (each already retried by the SDK): an outage or a
# wrong model name would otherwise burn through a 500K-request shard one timeout at a time.
MAX_FAILURES = 20
# Errors that no retry or other request can fix: stop at the first one.
FATAL_ERRORS: tuple[type[BaseException], ...] = (
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
)
# The API refused this one request for good (too long, content filter, invalid schema for it):
# the item is returned with its error and quarantined by the stage, the others go on.
REJECTED_ERRORS: tuple[type[BaseException], ...] = (
    openai.BadRequestError,
    openai.UnprocessableEntityError,
)
# A 200 reply whose body is not a chat.completion (truncated JSON, proxy page): retried here.
MALFORMED_ERRORS: tuple[type[BaseException], ...] = (json.JSONDecodeError, pydantic.ValidationError)


# A stage's check of one reply: the reasons it is unusable (empty: usable). Only replies that pass
# are cached; the others are kept apart in the store's `rejected` table and asked again next time.
Check = Callable[[ChatResult], Sequence[str]]


class LLMError(RuntimeError):
    """A request could not be answered (replay miss, API failure after retries, bad config)."""


class ReplayMissError(LLMError):
    """A request is absent from the replay recording."""


@dataclass(frozen=True)
class Endpoint:
    """Connection and throttling settings of one endpoint (a config llm.endpoints entry)."""

    base_url: str
    api_key_env: str
    max_concurrency: int
    requests_per_minute: int
    tokens_per_minute: int
    max_retries: int
    timeout_s: float

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> Endpoint:
        """Endpoint from a config mapping; unknown or missing keys raise listing the valid ones."""
        valid = list(cls.__dataclass_fields__)
        unknown = sorted(set(params) - set(valid))
        missing = [name for name in valid if name not in params]
        if unknown or missing:
            raise ValueError(
                f"llm endpoint config: unknown keys {unknown}, missing keys {missing}; "
                f"valid keys: {valid}"
            )
        return cls(**{name: params[name] for name in valid})


@dataclass
class Usage:
    """Counters of one client's work (mutable: updated as responses arrive)."""

    requests: int = 0
    cache_hits: int = 0
    requests_sent: int = 0
    http_attempts: int = 0
    malformed_retries: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict for usage reports."""
        return asdict(self)


class AttemptCounter:
    """httpx2 request hook counting HTTP attempts (the SDK's retries included), thread-safe."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, _request: httpx2.Request) -> None:
        with self._lock:
            self.count += 1


class LLMClient:
    """Answers chat requests from the cache, else through the SDK, a bounded number at a time."""

    def __init__(
        self,
        endpoint: Endpoint,
        mode: Mode,
        sdk: openai.OpenAI,
        store: ResponseStore,
        limiter: RateLimiter | None,
        recording: Mapping[str, dict[str, Any]] | None,
        attempts: AttemptCounter,
        secret: str | None = None,
        submit: str = "direct",
        batch: BatchSettings | None = None,
        closing: contextlib.ExitStack | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.mode = mode
        self.submit = submit
        self._batch = batch or BatchSettings()
        self._usage = Usage()
        self._attempts = attempts
        self._sdk = sdk
        self._store = store
        self._limiter = limiter
        self._recording = recording
        self._secret = secret
        self._closing = closing
        self._lock = threading.Lock()

    @property
    def usage(self) -> Usage:
        """Counters so far (HTTP attempts include the SDK's retries)."""
        self._usage.http_attempts = self._attempts.count
        return self._usage

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client and the store, then what the client owns (a vllm server)."""
        self._sdk.close()
        self._store.close()
        if self._closing is not None:
            self._closing.close()

    def key(self, request: ChatRequest) -> str:
        """The request's cache/replay key for this endpoint."""
        return request_key(self.endpoint.base_url, request.body())

    def complete(self, request: ChatRequest, check: Check | None = None) -> ChatResult:
        """Answer one request."""
        return self.complete_many([request], None if check is None else [check])[0]

    def complete_many(
        self, requests: Sequence[ChatRequest], checks: Sequence[Check | None] | None = None
    ) -> list[ChatResult]:
        """Answer requests in order: cache hits first, the rest sent concurrently and committed.

        `checks[i]` (optional) validates the reply to `requests[i]`: a reply it rejects is
        returned but not cached (kept apart with its reasons), and a cached reply it rejects (an
        older cache) is moved apart and asked again.
        """
        keys = [self.key(request) for request in requests]
        by_key: dict[str, Check] = {}
        for key, check in zip(keys, checks or [None] * len(keys), strict=True):
            if check is not None:
                by_key.setdefault(key, check)
        results: dict[str, ChatResult] = {}
        pending: dict[str, ChatRequest] = {}
        hits = 0
        for key, request in zip(keys, requests, strict=True):
            self._usage.requests += 1
            if key in results or key in pending:
                continue
            stored = self._store.get(key, self.mode)
            result = None if stored is None else self._cached(stored, by_key.get(key))
            if result is not None:
                results[key] = result
                hits += 1
            else:
                pending[key] = request
        self._usage.cache_hits += hits
        self._check_replay(pending)
        log.info(
            "llm: %d requests, %d cache hits, %d to send to %s (%s mode)",
            len(requests),
            hits,
            len(pending),
            self.endpoint.base_url,
            self.mode,
        )
        results.update(self._send_all(pending, by_key))
        return [results[key] for key in keys]

    def _cached(self, stored: StoredResponse, check: Check | None) -> ChatResult | None:
        """The cached result, or None when its check now rejects it (then moved apart)."""
        result = result_from_body(stored.key, stored.response, cached=True)
        reasons = list(check(result)) if check is not None else []
        if not reasons:
            return result
        log.warning("llm: cached reply %s fails its check, asking again: %s", stored.key, reasons)
        self._store.reject(stored, reasons)
        return None

    def _check_replay(self, pending: Mapping[str, ChatRequest]) -> None:
        if self.mode != "replay" or self._recording is None:
            return
        missing = [key for key in pending if key not in self._recording]
        if missing:
            first = pending[missing[0]]
            raise ReplayMissError(
                f"{len(missing)} request(s) missing from the replay recording, first: key "
                f"{missing[0]} (model {first.model}, last message "
                f"{first.messages[-1].get('content', '')[:80]!r}...); {RECORD_HINT}"
            )

    def _send_all(
        self, pending: Mapping[str, ChatRequest], checks: Mapping[str, Check]
    ) -> dict[str, ChatResult]:
        if not pending:
            return {}
        if self.submit == "batch" and self.mode == "live":
            return self._send_batches(pending, checks)
        results: dict[str, ChatResult] = {}
        failures: list[tuple[str, str]] = []
        fatal: list[BaseException] = []
        progress = Progress(f"llm {self.endpoint.base_url}", len(pending))

        def stop() -> bool:
            return bool(fatal) or len(failures) >= MAX_FAILURES

        with ThreadPoolExecutor(max_workers=self.endpoint.max_concurrency) as pool:
            for key, outcome in self._bounded(pool, pending, checks, stop):
                if isinstance(outcome, REJECTED_ERRORS):
                    results[key] = self._rejected(key, outcome)
                elif isinstance(outcome, BaseException):
                    failures.append((key, self._redact(f"{type(outcome).__name__}: {outcome}")))
                    fatal.extend([outcome] if isinstance(outcome, FATAL_ERRORS) else [])
                else:
                    results[key] = outcome
                progress.update(failed=key not in results or results[key].error is not None)
        if failures:
            self._raise_lost(len(pending), len(results), dict(failures))
        return results

    def _rejected(self, key: str, error: BaseException) -> ChatResult:
        reason = self._redact(f"{type(error).__name__}: {error}")
        log.warning("llm: request %s refused by the API, item quarantined: %s", key, reason)
        with self._lock:
            self._usage.rejected += 1
        return ChatResult(key, None, None, False, {}, reason)

    def _raise_lost(self, total: int, answered: int, failures: Mapping[str, str]) -> None:
        key, error = next(iter(failures.items()))
        skipped = total - answered - len(failures)
        raise LLMError(
            f"{len(failures)} of {total} requests to {self.endpoint.base_url} failed "
            f"after up to {self.endpoint.max_retries} retries ({skipped} not attempted); "
            f"first: key {key}: {error}. The {answered} completed responses are saved "
            f"in {self._store.path}; fix the cause and rerun the job to resume from there."
        )

    def _send_batches(
        self, pending: Mapping[str, ChatRequest], checks: Mapping[str, Check]
    ) -> dict[str, ChatResult]:
        backend = OpenAIBatches(self._sdk, self._batch.poll_s)
        workdir = self._store.path.parent / (self._store.path.stem + "_batches")

        def accept(key: str, request: ChatRequest, body: dict[str, Any]) -> ChatResult:
            return self._accept(key, request, body, checks.get(key))

        runner = BatchRunner(backend, self._store, workdir, self._batch, accept)
        try:
            results, lost = runner.run(pending)
        except (BatchError, openai.APIError) as err:
            message = f"batch submission to {self.endpoint.base_url}: {err}"
            raise LLMError(self._redact(message)) from err
        for result in results.values():
            if result.error is not None:
                with self._lock:
                    self._usage.rejected += 1
        if lost:
            self._raise_lost(len(pending), len(results), lost)
        return results

    def _bounded(
        self,
        pool: ThreadPoolExecutor,
        pending: Mapping[str, ChatRequest],
        checks: Mapping[str, Check],
        stop: Callable[[], bool],
    ) -> Iterator[tuple[str, ChatResult | BaseException]]:
        # Keep at most 2x max_concurrency futures alive so 500K-request shards stay small in memory;
        # stop submitting once `stop()` says the endpoint is failing (bad key, outage).
        queue = iter(pending.items())
        running: dict[Future, str] = {}
        limit = 2 * self.endpoint.max_concurrency
        while True:
            while len(running) < limit and not stop():
                item = next(queue, None)
                if item is None:
                    break
                key, request = item
                running[pool.submit(self._send, key, request, checks.get(key))] = key
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                error = future.exception()
                yield key, error if error is not None else future.result()

    def _send(self, key: str, request: ChatRequest, check: Check | None) -> ChatResult:
        for attempt in range(self.endpoint.max_retries + 1):
            if self._limiter is not None:
                self._limiter.acquire(estimated_tokens(request))
            raw = self._sdk.chat.completions.with_raw_response.create(
                model=request.model,
                # openai's stub types each role's message as its own TypedDict; ours are plain
                # role/content dicts that the API accepts as they are
                messages=list(request.messages),  # type: ignore[arg-type]
                **request.params,
            )
            try:
                body = json.loads(raw.http_response.text)
                return self._accept(key, request, body, check)
            except MALFORMED_ERRORS as err:
                if attempt == self.endpoint.max_retries:
                    raise LLMError(
                        f"malformed response body {self.endpoint.max_retries + 1} times "
                        f"({type(err).__name__}: {str(err)[:200]})"
                    ) from err
                with self._lock:
                    self._usage.malformed_retries += 1
                time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def _accept(
        self, key: str, request: ChatRequest, body: dict[str, Any], check: Check | None = None
    ) -> ChatResult:
        """Parse a 200 body, store it (committed at once) and count its tokens.

        A reply its check rejects is kept apart (store table `rejected`), never in the cache.
        """
        result = result_from_body(key, body, cached=False)
        entry = StoredResponse(
            key, self.mode, request.model, request.body(), body, request_json=request.body_json
        )
        reasons = list(check(result)) if check is not None else []
        if reasons:
            self._store.reject(entry, reasons)
        else:
            self._store.put(entry)
        with self._lock:
            self._usage.requests_sent += 1
            usage = body.get("usage") or {}
            self._usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self._usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        return result

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text


def batch_settings(values: Mapping[str, Any] | None) -> BatchSettings:
    """BatchSettings from config llm.batch; unknown keys raise listing the valid ones."""
    values = dict(values or {})
    valid = list(BatchSettings.__dataclass_fields__)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"llm.batch: unknown keys {unknown}; valid keys: {valid}")
    return BatchSettings(**values)


def open_client(
    endpoint: Mapping[str, Any],
    mode: str,
    replay_file: str | Path | None,
    cache_path: str | Path,
    submit: str = "direct",
    batch: Mapping[str, Any] | None = None,
    closing: contextlib.ExitStack | None = None,
) -> LLMClient:
    """Build a client: live reads the API key from the endpoint's env var, replay needs a file.

    submit='batch' sends uncached requests through the Batch API in live mode; in replay mode
    the recording answers them as direct requests (same keys). An endpoint with a `serve` block
    is self-hosted: in live mode `vllm serve` is started (medinjection.llm.vllm_server) on its
    base_url's port (falling back to a free one); replay needs no server. The client owns that
    server and `closing` (what the caller started for it): `close()` stops them, and so does a
    failure here.
    """
    closing = closing if closing is not None else contextlib.ExitStack()
    try:
        if endpoint.get("serve") and mode == "live":
            log_path = Path(cache_path).with_suffix(".vllm.log")
            endpoint = closing.enter_context(served_endpoint(endpoint, log_path))
        endpoint = {k: v for k, v in endpoint.items() if k != "serve"}
        return _open_client(endpoint, mode, replay_file, cache_path, submit, batch, closing)
    except BaseException:
        closing.close()
        raise


def _open_client(
    endpoint: Mapping[str, Any],
    mode: str,
    replay_file: str | Path | None,
    cache_path: str | Path,
    submit: str,
    batch: Mapping[str, Any] | None,
    closing: contextlib.ExitStack,
) -> LLMClient:
    config = Endpoint.from_dict(endpoint)
    if not _is_mode(mode):
        raise ValueError(f"unknown llm.mode {mode!r}; valid: {list(MODES)}")
    if submit not in SUBMITS:
        raise ValueError(f"unknown submit mode {submit!r}; valid: {list(SUBMITS)}")
    settings = batch_settings(batch)
    recording = None
    secret = None
    if mode == "replay":
        if not replay_file:
            raise ValueError("llm.mode is 'replay' but llm.replay_file is empty; set it")
        recording = load_recording(replay_file)
        api_key = "replay-mode-no-key"
        transport: httpx2.BaseTransport | None = replay_transport(recording, config.base_url)
        limiter = None  # throttling protects a remote quota; a recording has none
    else:
        secret = os.environ.get(config.api_key_env)
        if not secret:
            raise LLMError(
                f"llm.mode is 'live' but environment variable {config.api_key_env} is empty; "
                "export the API key there (it is never written to config, logs or cache)"
            )
        problem = api_key_problem(secret)
        if problem:
            raise LLMError(f"environment variable {config.api_key_env}: {problem}")
        api_key = secret
        transport = None  # the SDK's default pool (1000 connections / 100 keep-alive)
        limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)
    attempts = AttemptCounter()
    sdk = openai.OpenAI(
        api_key=api_key,
        base_url=config.base_url,
        max_retries=config.max_retries,
        timeout=config.timeout_s,
        http_client=openai.DefaultHttpxClient(
            transport=transport, timeout=config.timeout_s, event_hooks={"request": [attempts]}
        ),
    )
    store = open_store(cache_path)
    return LLMClient(
        config, mode, sdk, store, limiter, recording, attempts, secret, submit, settings, closing
    )
