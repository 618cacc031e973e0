"""A local fake OpenAI-compatible HTTP server for tests and bench/llm_client.py.

Real HTTP on 127.0.0.1 (the openai 3.x SDK uses httpx2, so patching httpx would not intercept it).
It answers chat completions deterministically from the request (default: "echo: <last message>"),
can delay, rate-limit (token bucket, 429 with Retry-After), fail (429/500/400/401) or send a
malformed body on demand, counts requests (total and distinct bodies), and serves the Batch API:
POST /v1/files (multipart), GET /v1/files/{id}/content, POST /v1/batches, GET /v1/batches/{id}.

In-process: `with FakeOpenAI().serve() as fake: fake.base_url ...`.
Own process (the bench): `python -m tests.support.fake_openai_server --latency 0.2 --rps 100` prints
`PORT <n>` and serves until killed; GET /stats returns the counters as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], str]
FAILURES = {"400": 400, "401": 401, "429": 429, "500": 500}


def echo(body: dict[str, Any]) -> str:
    """Default reply text: 'echo: ' + the last message's content."""
    return "echo: " + str(body["messages"][-1]["content"])


def completion(model: str, content: str, seed: str) -> dict[str, Any]:
    """A chat.completion body (token counts: ~4 characters a token)."""
    prompt = completion_tokens = max(1, len(content) // 4)
    return {
        "id": "chatcmpl-fake-" + hashlib.sha256(seed.encode()).hexdigest()[:12],
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


def endpoint_for(base_url: str, api_key_env: str, **overrides: Any) -> dict[str, Any]:
    """An `llm.endpoints` entry pointing at a fake server (pacing loose, 5 s timeout)."""
    return {
        "base_url": base_url,
        "api_key_env": api_key_env,
        "max_concurrency": 2,
        "requests_per_minute": 10_000,
        "tokens_per_minute": 10_000_000,
        "max_retries": 0,
        "timeout_s": 5,
        **overrides,
    }


def body_hash(body: dict[str, Any]) -> str:
    """Identity of a request body (for the distinct-request counter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class TokenBucket:
    """`rate` requests a second with `burst` capacity; `take()` is 0 or the seconds to wait."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.capacity = rate, max(1.0, burst)
        self.level, self.stamp = self.capacity, time.monotonic()

    def take(self) -> float:
        """Spend one token if there is one; else the seconds until there will be."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate


class FakeOpenAI:
    served_model_name = "fake"  # the id GET /v1/models lists (`vllm serve --served-model-name`)
    """State and behaviour of the fake server (all counters are thread-safe)."""

    def __init__(
        self,
        latency: float = 0.0,
        rps: float | None = None,
        burst: float = 1.0,
        responder: Responder = echo,
    ) -> None:
        self.latency = latency
        self.bucket = TokenBucket(rps, burst * rps) if rps else None
        self.responder = responder
        self.plan: deque[str | float] = deque()  # per-request actions, consumed in order
        self.fail_keys: dict[str, str] = {}  # last-message content -> failure action, every time
        self.seen: list[dict[str, Any]] = []
        self.statuses: Counter[int] = Counter()
        self.bodies: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_polls = 1  # retrieves answered 'in_progress' before a batch completes
        self.batch_final = "completed"  # or 'expired': then only the first half is answered
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.base_url = ""

    # ------------------------------------------------------------------ counters

    def stats(self) -> dict[str, Any]:
        """Counters: chat requests received, distinct bodies, statuses, max in flight."""
        with self.lock:
            return {
                "total": sum(self.bodies.values()),
                "unique": len(self.bodies),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "max_in_flight": self.max_in_flight,
                "batches": len(self.batches),
            }

    def new_id(self, prefix: str) -> str:
        """A fresh object id."""
        with self.lock:
            return f"{prefix}-{next(self._ids)}"

    # ------------------------------------------------------------------ chat completions

    def chat(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, bytes]:
        """(status, extra headers, payload) for one chat-completion request."""
        with self.lock:
            self.seen.append({"headers": headers, "body": body})
            self.bodies[body_hash(body)] += 1
            action = self.plan.popleft() if self.plan else "ok"
            last = str(body["messages"][-1].get("content", ""))
            action = self.fail_keys.get(last, action)
            wait = self.bucket.take() if self.bucket and action == "ok" else 0.0
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if wait > 0:  # refused at once, as a real API does
                retry = {"retry-after-ms": str(int(wait * 1000) + 1)}
                return self._error(429, "rate limit reached", retry)
            time.sleep(action if isinstance(action, float) else self.latency)
            return self._answer(action, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, action: str | float, body: dict[str, Any]) -> tuple[int, dict, bytes]:
        if action in FAILURES:
            return self._error(FAILURES[action], f"fake {action}", {"retry-after-ms": "10"})
        if action == "malformed":
            return 200, {}, b'{"id": "broken", "choices": [ {'
        reply = completion(body["model"], self.responder(body), body_hash(body))
        return 200, {}, json.dumps(reply).encode()

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        payload = {"error": {"message": message, "type": "fake", "code": str(status)}}
        return status, headers, json.dumps(payload).encode()

    # ------------------------------------------------------------------ files and batches

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        """Store the 'file' part of a multipart upload; the OpenAI FileObject for it."""
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        part = next(
            p
            for p in message.iter_parts()
            if p.get_param("name", header="content-disposition") == "file"
        )
        data = part.get_payload(decode=True)
        file_id = self.new_id("file")
        self.files[file_id] = data
        return self._file_object(file_id, part.get_filename() or "upload.jsonl", "batch")

    def _file_object(self, file_id: str, name: str, purpose: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": 0,
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }

    def create_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        """A new batch on an uploaded file (status 'validating')."""
        batch_id = self.new_id("batch")
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": request["endpoint"],
            "input_file_id": request["input_file_id"],
            "completion_window": request["completion_window"],
            "created_at": 0,
            "status": "validating",
            "polls": 0,
        }
        self.batches[batch_id] = batch
        return self._public(batch)

    def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        """The batch, advanced one poll; it is run when `batch_polls` polls have been answered."""
        batch = self.batches[batch_id]
        if batch["status"] in ("validating", "in_progress"):
            batch["polls"] += 1
            batch["status"] = "in_progress"
            if batch["polls"] > self.batch_polls:
                self._run_batch(batch)
        return self._public(batch)

    def _run_batch(self, batch: dict[str, Any]) -> None:
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].splitlines() if x]
        answered = lines if self.batch_final == "completed" else lines[: len(lines) // 2]
        out, err = [], []
        for line in answered:
            status, _, payload = self.chat(line["body"], {})
            entry = {
                "id": self.new_id("batch_req"),
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": "r", "body": json.loads(payload)},
                "error": None,
            }
            (out if status == 200 else err).append(json.dumps(entry))
        for name, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                file_id = self.new_id("file")
                self.files[file_id] = ("\n".join(rows) + "\n").encode()
                batch[name] = file_id
        batch["status"] = self.batch_final
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}

    @staticmethod
    def _public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if k != "polls"}

    # ------------------------------------------------------------------ serving

    @contextlib.contextmanager
    def serve(self, port: int = 0) -> Iterator[FakeOpenAI]:
        """Serve on 127.0.0.1:`port` (0 = a free port) in a thread for the `with` block."""
        server = QuietServer(("127.0.0.1", port), make_handler(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def make_handler(state: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to `state` (HTTP/1.1 keep-alive)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add
        # ~40 ms to every keep-alive response (real servers such as uvicorn set it too)
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path.endswith("/chat/completions"):
                status, extra, payload = state.chat(json.loads(raw), headers)
                self.send(status, payload, extra)
            elif self.path.endswith("/files"):
                self.send_json(state.upload(headers["content-type"], raw))
            elif self.path.endswith("/batches"):
                self.send_json(state.create_batch(json.loads(raw)))
            else:
                self.send(404, b'{"error": {"message": "no such route"}}')

        def do_GET(self) -> None:  # noqa: N802
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[-1] == "stats":
                self.send_json(state.stats())
            elif parts[-1] == "models":
                model = {"id": state.served_model_name, "object": "model"}
                self.send_json({"object": "list", "data": [model]})
            elif parts[-1] == "content" and parts[-2] in state.files:
                self.send(200, state.files[parts[-2]], content_type="application/octet-stream")
            elif parts[-2] == "batches" and parts[-1] in state.batches:
                self.send_json(state.retrieve_batch(parts[-1]))
            else:
                self.send(404, b'{"error": {"message": "no such route"}}')

        def send_json(self, value: dict[str, Any]) -> None:
            self.send(200, json.dumps(value).encode())

        def send(
            self,
            status: int,
            payload: bytes,
            extra: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            with state.lock:
                state.statuses[status] += 1
            self.send_response(status)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


class QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request (the bench SIGKILLs one) is not a server error."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # broken pipe, reset
            super().handle_error(request, client_address)


def main() -> None:
    """Serve in the foreground (bench): prints 'PORT <n>' once listening."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rps", type=float, default=0.0, help="rate limit, requests/s (0: none)")
    parser.add_argument("--burst", type=float, default=1.0, help="bucket capacity in seconds")
    parser.add_argument("--served-model-name", default="fake", help="the id /v1/models lists")
    args = parser.parse_args()
    fake = FakeOpenAI(args.latency, args.rps or None, args.burst)
    fake.served_model_name = args.served_model_name
    with fake.serve(args.port):
        print("PORT", fake.base_url.rsplit(":", 1)[1].split("/")[0], flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
