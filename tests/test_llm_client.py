"""LLM client against a local fake OpenAI-compatible server: cache, retries, replay, secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medinjection.llm.client import (
    ChatRequest,
    Endpoint,
    LLMError,
    ReplayMissError,
    make_chat_fn,
    open_client,
)
from medinjection.llm.ratelimit import RateLimiter
from medinjection.llm.replay import completion_body, recording_entry, write_recording
from medinjection.llm.store import export_recording, open_store

SECRET = "sk-test-SECRET-0123456789abcdef"
ENV = "MEDINJECTION_TEST_KEY"


class FakeOpenAI:
    """A tiny chat-completions server; `plan` holds per-request actions consumed in order."""

    def __init__(self) -> None:
        self.plan: deque[str | float] = deque()
        self.seen: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.delay = 0.0

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        with self.lock:
            self.seen.append(
                {"headers": {k.lower(): v for k, v in handler.headers.items()}, "body": body}
            )
            action = self.plan.popleft() if self.plan else "ok"
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(action if isinstance(action, float) else self.delay)
            self.reply(handler, action, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def reply(self, handler: BaseHTTPRequestHandler, action: str | float, body: dict) -> None:
        if action in ("401", "429", "500"):
            payload = json.dumps({"error": {"message": "try later", "type": "x"}}).encode()
            handler.send_response(int(action))
            handler.send_header("retry-after-ms", "10")
        elif action == "malformed":
            payload = b'{"id": "broken", "choices": [ {'
            handler.send_response(200)
        else:
            content = "echo: " + body["messages"][-1]["content"]
            payload = json.dumps(completion_body(body["model"], content, "fake" * 4)).encode()
            handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@pytest.fixture()
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    state = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            state.handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def endpoint(base_url: str, **overrides: object) -> dict:
    values = {
        "base_url": base_url,
        "api_key_env": ENV,
        "max_concurrency": 4,
        "requests_per_minute": 1000,
        "tokens_per_minute": 10_000_000,
        "max_retries": 3,
        "timeout_s": 5,
    }
    return {**values, **overrides}


def ask(text: str) -> ChatRequest:
    return ChatRequest("m", ({"role": "user", "content": text},), {"max_tokens": 8})


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


def test_live_then_cache_sends_zero_requests(fake, tmp_path: Path) -> None:
    state, url = fake
    cache = tmp_path / "c.sqlite"
    with open_client(endpoint(url), "live", None, cache) as client:
        results = client.complete_many([ask("a"), ask("b"), ask("a")])
        usage = client.usage
    assert [r.text for r in results] == ["echo: a", "echo: b", "echo: a"]
    assert (usage.requests, usage.requests_sent, usage.cache_hits) == (3, 2, 0)
    assert len(state.seen) == 2 and usage.prompt_tokens == 2 * 1  # "echo: a" is 7 chars -> 1
    with open_client(endpoint(url), "live", None, cache) as client:
        again = client.complete_many([ask("b"), ask("a")])
        assert (client.usage.requests_sent, client.usage.cache_hits) == (0, 2)
    assert len(state.seen) == 2
    assert [r.text for r in again] == ["echo: b", "echo: a"] and all(r.cached for r in again)


def test_429_and_500_are_retried(fake, tmp_path: Path) -> None:
    state, url = fake
    state.plan.extend(["429", "500"])
    with open_client(endpoint(url), "live", None, tmp_path / "c.sqlite") as client:
        result = client.complete(ask("x"))
        assert (client.usage.requests_sent, client.usage.http_attempts) == (1, 3)
    assert result.text == "echo: x" and len(state.seen) == 3


def test_timeout_is_retried(fake, tmp_path: Path) -> None:
    state, url = fake
    state.plan.append(1.5)
    with open_client(endpoint(url, timeout_s=0.3), "live", None, tmp_path / "c.sqlite") as client:
        assert client.complete(ask("slow")).text == "echo: slow"
        assert client.usage.http_attempts == 2


def test_failures_raise_after_retries_and_keep_successes(fake, tmp_path: Path) -> None:
    state, url = fake
    state.plan.extend(["429"] * 3)  # max_retries=2 -> 3 attempts, all 429
    cache = tmp_path / "c.sqlite"
    with open_client(endpoint(url, max_retries=2, max_concurrency=1), "live", None, cache) as c:
        with pytest.raises(LLMError, match=r"1 of 2 requests .* failed.*rerun the job"):
            c.complete_many([ask("lost"), ask("kept")])
    store = open_store(cache)
    assert store.count("live") == 1
    store.close()


def test_bad_key_stops_sending_at_once(fake, tmp_path: Path) -> None:
    state, url = fake
    state.plan.extend(["401"] * 6)
    cache = tmp_path / "c.sqlite"
    with open_client(endpoint(url, max_concurrency=1), "live", None, cache) as client:
        with pytest.raises(LLMError, match=r"of 6 requests .*\([34] not attempted\).*Authentic"):
            client.complete_many([ask(str(i)) for i in range(6)])
    assert len(state.seen) <= 2  # 401 is not retried, and nothing new is sent after it


def test_malformed_body_is_an_error_not_a_cache_entry(fake, tmp_path: Path) -> None:
    state, url = fake
    state.plan.append("malformed")
    with open_client(endpoint(url), "live", None, tmp_path / "c.sqlite") as client:
        with pytest.raises(LLMError, match="JSONDecodeError"):
            client.complete(ask("x"))
    assert open_store(tmp_path / "c.sqlite").count() == 0


def test_concurrency_is_bounded(fake, tmp_path: Path) -> None:
    state, url = fake
    state.delay = 0.2
    with open_client(endpoint(url, max_concurrency=3), "live", None, tmp_path / "c.sqlite") as c:
        results = c.complete_many([ask(str(i)) for i in range(9)])
    assert [r.text for r in results] == [f"echo: {i}" for i in range(9)]
    assert state.max_in_flight == 3


def test_api_key_never_in_store_or_logs(fake, tmp_path: Path, caplog) -> None:
    state, url = fake
    state.plan.append("429")
    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "c.sqlite"
    with open_client(endpoint(url), "live", None, cache) as client:
        client.complete(ask("secret?"))
    assert state.seen[0]["headers"]["authorization"] == f"Bearer {SECRET}"  # it was used...
    assert SECRET not in caplog.text and len(caplog.text) > 0  # ...but never logged
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("c.sqlite*"))
    assert SECRET.encode() not in stored and b"secret?" in stored


def test_missing_api_key_names_the_variable(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV)
    with pytest.raises(LLMError, match=ENV):
        open_client(endpoint("http://127.0.0.1:9/v1"), "live", None, tmp_path / "c.sqlite")


def test_bad_config_lists_valid_keys_and_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['rpm'\].*valid keys"):
        Endpoint.from_dict({**endpoint("x"), "rpm": 3})
    with pytest.raises(ValueError, match=r"valid: \['live', 'replay'\]"):
        open_client(endpoint("x"), "offline", None, tmp_path / "c.sqlite")


def test_replay_uses_sdk_and_missing_key_is_an_error(tmp_path: Path) -> None:
    url = "https://api.example.org/v1"
    hit = ask("recorded")
    entry = recording_entry(url, hit, completion_body("m", "from the file", "k" * 16))
    replay = tmp_path / "rec.jsonl"
    write_recording([entry], replay)
    with open_client(endpoint(url), "replay", str(replay), tmp_path / "c.sqlite") as client:
        assert client.complete(hit).text == "from the file"
        assert client.usage.http_attempts == 1  # went through the SDK and the mock transport
        with pytest.raises(ReplayMissError) as err:
            client.complete(ask("never recorded"))
    assert client.key(ask("never recorded")) in str(err.value)
    assert "tools/record_demo_llm.py" in str(err.value)
    assert export_recording(tmp_path / "c.sqlite", tmp_path / "x.jsonl", mode="replay") == 1


def test_make_chat_fn_keeps_order(fake, tmp_path: Path) -> None:
    state, url = fake
    chat = make_chat_fn(endpoint(url), "judge", "live", None, str(tmp_path / "j.sqlite"), 4)
    convs = [[{"role": "user", "content": t}] for t in ("one", "two", "three")]
    assert chat(convs) == ["echo: one", "echo: two", "echo: three"]
    assert state.seen[0]["body"]["max_tokens"] == 4 and state.seen[0]["body"]["temperature"] == 0
    assert chat(convs[:1]) == ["echo: one"] and len(state.seen) == 3


def test_rate_limiter_waits_for_the_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2, 100, clock=lambda: now[0], sleep=sleep)
    assert limiter.acquire(10) == 0.0
    now[0] = 5.0
    assert limiter.acquire(10) == 0.0
    # 3rd request at t=5 waits until the t=0 one leaves the 60 s window
    assert limiter.acquire(10) == pytest.approx(55.0)
    # at t=60 the window holds 10 (t=5) + 10 (t=60) tokens; 20 + 85 > 100 until t=65
    assert limiter.acquire(85) == pytest.approx(5.0)
    assert slept == pytest.approx([55.0, 5.0])


def test_store_survives_kill_9(tmp_path: Path) -> None:
    code = (
        "import os, signal\n"
        "from medinjection.llm.store import open_store, StoredResponse\n"
        f"s = open_store({str(tmp_path / 'k.sqlite')!r})\n"
        "s.put(StoredResponse('k1', 'live', 'm', {'a': 1}, {'b': 2}))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    store = open_store(tmp_path / "k.sqlite")
    assert store.get("k1", "live").response == {"b": 2}
    assert store.get("k1", "replay") is None  # replay rows never answer live requests and back
