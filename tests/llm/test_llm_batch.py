"""Batch submission against the fake server's Batch API, resume after a kill, `vllm run-batch`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medinjection.llm import client as client_module
from medinjection.llm.batch import (
    BatchRunner,
    BatchSettings,
    OpenAIBatches,
    VllmRunBatch,
    batch_line,
    chunk_lines,
)
from medinjection.llm.client import ChatRequest, ChatResult, LLMError, open_client
from medinjection.llm.request import result_from_body
from medinjection.llm.store import open_store
from tests.support.fake_openai_server import FakeOpenAI, endpoint_for

ENV = "MEDINJECTION_TEST_KEY"
FAST = {"poll_s": 0.01}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "sk-batch-test")


@pytest.fixture()
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().serve() as state:
        yield state


def endpoint(base_url: str) -> dict:
    return endpoint_for(base_url, ENV, requests_per_minute=1000, max_retries=2)


def ask(text: str) -> ChatRequest:
    return ChatRequest("m", ({"role": "user", "content": text},), {"max_tokens": 8})


def batch_client(fake: FakeOpenAI, cache: Path, **batch: object):
    settings = {**FAST, **batch}
    return open_client(endpoint(fake.base_url), "live", None, cache, "batch", settings)


def test_batch_round_trip_then_cache(fake, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    requests = [ask(str(i)) for i in range(5)]
    with batch_client(fake, cache, max_requests=2) as client:
        results = client.complete_many(requests)
        usage = client.usage
    assert [r.text for r in results] == [f"echo: {i}" for i in range(5)]
    assert fake.stats()["batches"] == 3  # 5 requests, 2 per batch file
    assert usage.requests_sent == 5 and usage.prompt_tokens == 5  # "echo: i" -> 7 chars -> 1
    # the input files go once imported (their requests are in the store): the uploads are read
    assert list((tmp_path / "c_batches").glob("*.jsonl")) == []
    uploads = [fake.files[batch["input_file_id"]] for batch in fake.batches.values()]
    lines = [json.loads(x) for data in uploads for x in data.decode().splitlines()]
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert sorted(json.dumps(line["body"], sort_keys=True) for line in lines) == sorted(
        json.dumps(r.body(), sort_keys=True) for r in requests
    )
    assert {line["method"] for line in lines} == {"POST"}
    with batch_client(fake, cache) as client:
        again = client.complete_many(requests)
        assert client.usage.cache_hits == 5 and client.usage.requests_sent == 0
    assert fake.stats()["batches"] == 3 and all(r.cached for r in again)
    assert open_store(cache).open_batches() == []


def test_killed_job_resumes_its_batch_without_resubmitting(
    fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "c.sqlite"
    requests = [ask(str(i)) for i in range(4)]

    class KilledWhileWaiting(OpenAIBatches):
        def wait(self, batch_id: str):
            raise KeyboardInterrupt  # the job dies after submitting, before any result

    monkeypatch.setattr(client_module, "OpenAIBatches", KilledWhileWaiting)
    with batch_client(fake, cache) as client, pytest.raises(KeyboardInterrupt):
        client.complete_many(requests)
    assert len(open_store(cache).open_batches()) == 1 and fake.stats()["total"] == 0
    monkeypatch.setattr(client_module, "OpenAIBatches", OpenAIBatches)
    with batch_client(fake, cache) as client:
        results = client.complete_many(requests)
    assert [r.text for r in results] == [f"echo: {i}" for i in range(4)]
    assert fake.stats()["batches"] == 1 and fake.stats()["total"] == 4  # resumed, not resent
    assert open_store(cache).open_batches() == []


def test_job_killed_while_importing_a_batch_reimports_it_from_the_open_batch(
    fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a batch's rows are committed once, with its closing: a job killed mid-import leaves the
    # batch open, and the rerun imports it again instead of paying for its requests twice
    cache = tmp_path / "c.sqlite"
    requests = [ask(str(i)) for i in range(4)]
    accept = client_module.LLMClient._accept
    calls = []

    def killed_on_the_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return accept(self, *args, **kwargs)

    monkeypatch.setattr(client_module.LLMClient, "_accept", killed_on_the_third)
    with batch_client(fake, cache) as client, pytest.raises(KeyboardInterrupt):
        client.complete_many(requests)
    store = open_store(cache)
    assert len(store.open_batches()) == 1 and store.count() == 2  # kept, batch still open
    store.close()
    monkeypatch.setattr(client_module.LLMClient, "_accept", accept)
    with batch_client(fake, cache) as client:
        results = client.complete_many(requests)
        assert (client.usage.cache_hits, client.usage.requests_sent) == (2, 2)
    assert [r.text for r in results] == [f"echo: {i}" for i in range(4)]
    assert fake.stats()["batches"] == 1 and fake.stats()["total"] == 4  # nothing sent twice
    assert open_store(cache).open_batches() == []
    # the input file stays while its batch is open and goes once it is imported
    assert list((tmp_path / "c_batches").glob("*.jsonl")) == []


def test_expired_batch_resubmits_only_the_missing(fake, tmp_path: Path) -> None:
    fake.batch_final = "expired"  # each batch answers only the first half of its lines
    with batch_client(fake, tmp_path / "c.sqlite", rounds=3) as client:
        with pytest.raises(LLMError, match=r"1 of 4 requests .*not answered by the batch"):
            client.complete_many([ask(str(i)) for i in range(4)])
    # round 1 answers 2 of 4, round 2 1 of the 2 left, round 3 none of the last one: reported
    assert fake.stats()["batches"] == 3 and fake.stats()["total"] == 3
    assert open_store(tmp_path / "c.sqlite").count() == 3


def test_items_refused_or_lost_are_reported(fake, tmp_path: Path) -> None:
    fake.fail_keys.update({"bad": "400", "flaky": "500"})
    with batch_client(fake, tmp_path / "c.sqlite", rounds=2) as client:
        with pytest.raises(LLMError, match=r"1 of 3 requests .* failed.*HTTP 500"):
            client.complete_many([ask("ok"), ask("bad"), ask("flaky")])
        assert client.usage.rejected == 1
    assert fake.stats()["batches"] == 2  # 'flaky' resubmitted once, then reported
    assert open_store(tmp_path / "c.sqlite").count() == 1


def test_vllm_run_batch_reads_the_same_jsonl(tmp_path: Path) -> None:
    fake_vllm = tmp_path / "fake_vllm.py"
    fake_vllm.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "i, o = sys.argv[sys.argv.index('-i') + 1], sys.argv[sys.argv.index('-o') + 1]\n"
        "from tests.support.fake_openai_server import completion\n"
        "with open(o, 'w') as out:\n"
        "    for row in open(i):\n"
        "        r = json.loads(row)\n"
        "        body = completion(r['body']['model'], 'vllm: ' + r['body']['messages'][-1]"
        "['content'], r['custom_id'])\n"
        "        out.write(json.dumps({'id': 'x', 'custom_id': r['custom_id'], 'response': "
        "{'status_code': 200, 'body': body}, 'error': None}) + '\\n')\n"
    )
    store = open_store(tmp_path / "c.sqlite")
    accepted: list[str] = []

    def accept(key: str, request: ChatRequest, body: dict) -> ChatResult:
        accepted.append(key)
        return result_from_body(key, body, cached=False)

    backend = VllmRunBatch([sys.executable, str(fake_vllm), "--model", "/models/x"])
    runner = BatchRunner(backend, store, tmp_path / "b", BatchSettings(), accept)
    pending = {f"k{i}": ask(str(i)) for i in range(3)}
    results, lost = runner.run(pending)
    assert lost == {} and [results[k].text for k in pending] == ["vllm: 0", "vllm: 1", "vllm: 2"]
    assert store.open_batches() == [] and accepted == list(pending)


def test_chunks_respect_request_and_byte_limits() -> None:
    pending = {f"k{i}": ask("x" * 50) for i in range(5)}
    size = len(batch_line("k0", pending["k0"]).encode()) + 1
    by_count = [len(c) for c in chunk_lines(pending, BatchSettings(max_requests=2))]
    by_bytes = [len(c) for c in chunk_lines(pending, BatchSettings(max_bytes=3 * size))]
    assert by_count == [2, 2, 1] and by_bytes == [3, 2]
