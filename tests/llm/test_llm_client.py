"""LLM client against a local fake OpenAI-compatible server: cache, retries, replay, secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medinjection.llm.chat import make_chat_fn
from medinjection.llm.client import (
    ChatRequest,
    Endpoint,
    LLMError,
    ReplayMissError,
    open_client,
)
from medinjection.llm.ratelimit import RateLimiter
from medinjection.llm.replay import completion_body, recording_entry, write_recording
from medinjection.llm.store import StoredResponse, export_recording, open_store
from tests.support.fake_openai_server import FakeOpenAI

SECRET = "sk-test-SECRET-0123456789abcdef"
ENV = "MEDINJECTION_TEST_KEY"


@pytest.fixture()
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    with FakeOpenAI().serve() as state:
        yield state, state.base_url


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


def test_malformed_body_is_retried_to_success(fake, tmp_path: Path) -> None:
    state, url = fake
    state.plan.extend(["malformed", "malformed"])
    with open_client(endpoint(url), "live", None, tmp_path / "c.sqlite") as client:
        assert client.complete(ask("x")).text == "echo: x"
        assert (client.usage.malformed_retries, client.usage.requests_sent) == (2, 1)
    assert open_store(tmp_path / "c.sqlite").count() == 1


def test_always_malformed_is_an_error_not_a_cache_entry(fake, tmp_path: Path) -> None:
    state, url = fake
    state.plan.extend(["malformed"] * 3)  # max_retries=2 -> 3 attempts
    with open_client(endpoint(url, max_retries=2), "live", None, tmp_path / "c.sqlite") as client:
        with pytest.raises(LLMError, match=r"malformed response body 3 times \(JSONDecodeError"):
            client.complete(ask("x"))
    assert len(state.seen) == 3 and open_store(tmp_path / "c.sqlite").count() == 0


def test_refused_request_is_returned_with_its_error(fake, tmp_path: Path) -> None:
    state, url = fake
    state.fail_keys["too long"] = "400"
    with open_client(endpoint(url), "live", None, tmp_path / "c.sqlite") as client:
        results = client.complete_many([ask("fine"), ask("too long")])
        assert client.usage.rejected == 1
    assert results[0].text == "echo: fine" and results[0].error is None
    assert results[1].text is None and results[1].error.startswith("BadRequestError")
    assert len(state.seen) == 2  # a 400 is not retried
    assert open_store(tmp_path / "c.sqlite").count() == 1  # and not cached: a rerun may retry


def test_server_rate_limit_429_retry_after_is_honoured(tmp_path: Path) -> None:
    # the server allows 20 requests/s with no burst; the client does not pace (huge budget), so
    # the server answers 429 + retry-after-ms, and the SDK waits and retries until all pass
    with FakeOpenAI(rps=20, burst=0.05).serve() as state:
        spec = endpoint(
            state.base_url, max_retries=50, max_concurrency=2, requests_per_minute=10**6
        )
        with open_client(spec, "live", None, tmp_path / "c.sqlite") as client:
            results = client.complete_many([ask(str(i)) for i in range(10)])
            attempts = client.usage.http_attempts
    assert [r.text for r in results] == [f"echo: {i}" for i in range(10)]
    stats = state.stats()
    assert stats["statuses"]["200"] == 10 and stats["statuses"]["429"] >= 1
    assert attempts == 10 + stats["statuses"]["429"]


def test_client_pacing_avoids_429(tmp_path: Path) -> None:
    # a client paced at the server's rate: no 429 at all (the server's bucket holds 2 s, the
    # client's 1 s, so thread-scheduling jitter never finds the server bucket empty)
    with FakeOpenAI(rps=20, burst=2.0).serve() as state:
        spec = endpoint(state.base_url, requests_per_minute=20 * 60)
        with open_client(spec, "live", None, tmp_path / "c.sqlite") as client:
            client.complete_many([ask(str(i)) for i in range(30)])
    assert state.stats()["statuses"] == {"200": 30}


def test_concurrency_is_bounded(fake, tmp_path: Path) -> None:
    state, url = fake
    state.latency = 0.2
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
    store = open_store(cache)  # the request/response columns are compressed: decoded too
    texts = json.dumps([[e.request, e.response] for e in store.entries("live")])
    store.close()
    assert SECRET.encode() not in stored and SECRET not in texts and "secret?" in texts


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
    assert chat.usage.requests == 4 and chat.usage.cache_hits == 1  # one client for both calls
    chat.close()
    with pytest.raises(RuntimeError, match="after close"):
        chat(convs)


def test_rate_limiter_paces_requests_and_tokens() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    # 120 requests/min = 2/s (bucket of 2), 600 tokens/min = 10/s (bucket of 10)
    limiter = RateLimiter(120, 600, clock=lambda: now[0], sleep=sleep)
    assert [limiter.acquire(1) for _ in range(4)] == pytest.approx([0.0, 0.0, 0.5, 1.0])
    now[0] = 10.0  # both buckets full again
    assert limiter.acquire(10) == 0.0  # spends the whole token bucket
    assert limiter.acquire(5) == pytest.approx(0.5)  # 5 tokens at 10/s
    assert limiter.acquire(50) == pytest.approx(1.5)  # > capacity: waits for a full bucket only
    # ...and its debt of 40 tokens delays the next caller by 4 s more
    assert limiter.acquire(1) == pytest.approx(1.5 + 4.0 + 0.1)
    assert slept == pytest.approx([0.5, 1.0, 0.5, 1.5, 5.6])


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


def test_store_compresses_replies_and_reads_older_text_rows(tmp_path: Path) -> None:
    import sqlite3

    store = open_store(tmp_path / "s.sqlite")
    request = {"model": "m", "messages": [{"role": "user", "content": "Été " * 200}]}
    response = {"choices": [{"message": {"content": "Réponse " * 200}}], "id": "x"}
    store.put(StoredResponse("k1", "live", "m", request, response))
    store.close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        raw = db.execute("SELECT request, response FROM responses").fetchone()
        assert all(isinstance(v, bytes) for v in raw)  # zlib BLOBs, a fraction of the text
        assert len(raw[0]) < len(json.dumps(request, ensure_ascii=False)) / 4
        # a row written as TEXT by an earlier version of the store
        db.execute(
            "INSERT INTO responses VALUES ('k0', 'live', 'm', ?, ?, 0)",
            (json.dumps(request), json.dumps({"id": "old"})),
        )
    store = open_store(tmp_path / "s.sqlite")
    assert store.get("k1", "live") == StoredResponse("k1", "live", "m", request, response)
    assert store.get("k0", "live").response == {"id": "old"}
    assert [e.key for e in store.entries("live")] == ["k0", "k1"]
    store.close()


def test_sentinel_key_never_in_log_cache_or_shard_outputs(fake, tmp_path: Path) -> None:
    from medinjection.logs import setup_logging
    from medinjection.records import Record, write_records
    from medinjection.settings import EndpointSettings
    from medinjection.stages.translate import translate_shard

    state, url = fake
    state.plan.extend(["429", "500"])  # errors are logged and must be redacted too
    state.responder = lambda body: '{"question": "Quoi ?", "options": {"A": "oui", "B": "non"}}'
    records = tmp_path / "en.parquet"
    options = (("A", "yes"), ("B", "no"))
    write_records(
        [Record("medqa:1", "translated", "medqa", "mcqu", "train", "What?", "A", options,
                language="en")],
        records,
    )  # fmt: skip
    setup_logging(tmp_path / "job.log", level=logging.DEBUG)
    out, usage, cache = tmp_path / "out.parquet", tmp_path / "usage.json", tmp_path / "c.sqlite"
    translate_shard(
        records, out, usage, 0, 1, EndpointSettings.from_dict(endpoint(url)), "m", 0.0, 64,
        "live", None, str(cache),
        max_quarantine_rate=0.0, quarantine_path=tmp_path / "job.quarantine.jsonl",
    )  # fmt: skip
    logging.getLogger().handlers.clear()
    assert state.seen[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
    written = list(tmp_path.iterdir())
    assert {p.name for p in written} >= {"job.log", "out.parquet", "usage.json", "c.sqlite"}
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    # the store's request/response columns are compressed: look inside them too
    store = open_store(cache)
    stored = [json.dumps([e.request, e.response]) for e in store.entries("live")]
    store.close()
    assert stored and not any(SECRET in text for text in stored)
    assert json.loads((tmp_path / "usage.json").read_text())["counts"]["translated"] == 1


FAKE_VLLM = """#!{python}
# stands in for `vllm serve <model> --served-model-name m --port P ...`: the fake OpenAI server
import sys
sys.path.insert(0, {root!r})
name = sys.argv[sys.argv.index("--served-model-name") + 1]
sys.argv = ["fake", "--port", sys.argv[sys.argv.index("--port") + 1], "--latency", "0",
            "--served-model-name", name]
from tests.support.fake_openai_server import main
main()
"""


def fake_vllm_and_port(tmp_path: Path) -> tuple[Path, int]:
    """A fake `vllm` executable (FAKE_VLLM) under tmp_path/bin and a free local port."""
    import socket

    fake_vllm = tmp_path / "bin" / "vllm"
    fake_vllm.parent.mkdir()
    root = str(Path(__file__).resolve().parents[2])
    fake_vllm.write_text(FAKE_VLLM.format(python=sys.executable, root=root))
    fake_vllm.chmod(0o755)
    with socket.socket() as sock:  # a free port for the configured base_url
        sock.bind(("127.0.0.1", 0))
        return fake_vllm, sock.getsockname()[1]


def test_self_hosted_endpoint_starts_vllm_and_stops_it_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    fake_vllm, port = fake_vllm_and_port(tmp_path)
    model = tmp_path / "weights"
    model.mkdir()
    monkeypatch.delenv(ENV)  # a served endpoint needs no API key
    serve = {"model_path": str(model), "served_model_name": "m", "executable": str(fake_vllm),
             "extra_args": ["--tensor-parallel-size", "1"], "ready_timeout_s": 30}  # fmt: skip
    served = endpoint(f"http://127.0.0.1:{port}/v1", serve=serve)
    cache = tmp_path / "c.sqlite"
    with open_client(served, "live", None, cache) as client:
        assert client.endpoint.base_url == f"http://127.0.0.1:{port}/v1"
        assert [r.text for r in client.complete_many([ask("bonjour")])] == ["echo: bonjour"]
    with pytest.raises(OSError):  # stopped by close()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
    log = cache.with_suffix(".vllm.log")
    assert log.exists()
    # the server came up on the configured port, so the cache keys match on the next run
    with open_client(served, "live", None, cache) as client:
        assert client.complete(ask("bonjour")).cached
    with pytest.raises(FileNotFoundError, match="model directory"):
        open_client({**served, "serve": {**serve, "model_path": str(tmp_path / "none")}},
                    "live", None, tmp_path / "d.sqlite")  # fmt: skip


def test_chat_fn_starts_one_server_for_all_calls_and_stops_it_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    from medinjection.llm import vllm_server

    fake_vllm, port = fake_vllm_and_port(tmp_path)
    (tmp_path / "weights").mkdir()
    monkeypatch.delenv(ENV)
    started: list[list[str]] = []
    popen = subprocess.Popen

    def counting_popen(command, *args, **kwargs):
        started.append(list(command))
        return popen(command, *args, **kwargs)

    monkeypatch.setattr(vllm_server.subprocess, "Popen", counting_popen)
    serve = {"model_path": str(tmp_path / "weights"), "served_model_name": "m",
             "executable": str(fake_vllm), "ready_timeout_s": 30}  # fmt: skip
    served = endpoint(f"http://127.0.0.1:{port}/v1", serve=serve)
    with make_chat_fn(served, "m", "live", None, str(tmp_path / "c.sqlite"), 8) as chat:
        assert started == []  # nothing starts before the first call
        assert chat([[{"role": "user", "content": "un"}]]) == ["echo: un"]
        assert chat([[{"role": "user", "content": "deux"}]]) == ["echo: deux"]
        assert len(started) == 1  # one `vllm serve` for both calls
    with pytest.raises(OSError):  # stopped when the chat function closed
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
