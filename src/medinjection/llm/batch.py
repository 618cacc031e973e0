"""Batch submission: the OpenAI Batch API (half price) or `vllm run-batch`, same JSONL, resumable.

Requests not in the response store are written as Batch-API JSONL lines ({custom_id: request
key, method, url, body}), in files of at most `max_requests` lines / `max_bytes` (deleted once
the batch's results are imported). Every submitted
batch id is committed to the store before waiting, so a killed job resumes polling the batches it
already paid for instead of submitting them again. Results are imported into the same store as
direct responses. Items answered 429/5xx or left out of an expired batch are resubmitted (up to
`rounds` times); items refused for good (400/422) come back as results with `error` set; anything
still missing at the end raises LLMError naming it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import openai

from medinjection.llm.request import ChatRequest, ChatResult
from medinjection.llm.store import ResponseStore

log = logging.getLogger(__name__)

CHAT_URL: Final = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")
Accept = Callable[[str, ChatRequest, dict[str, Any]], ChatResult]


class BatchError(RuntimeError):
    """A batch was refused as a whole (bad file, bad model): resubmitting cannot help."""


@dataclass(frozen=True)
class BatchSettings:
    """Batch limits and polling (config llm.batch)."""

    poll_s: float = 60.0
    max_requests: int = 50_000
    max_bytes: int = 190_000_000
    rounds: int = 3


def batch_line(key: str, request: ChatRequest) -> str:
    """One Batch-API / `vllm run-batch` input line for a request.

    The text of json.dumps({custom_id, method, url, body}, ensure_ascii=False, sort_keys=True),
    assembled around the request's encoded body instead of encoding it again.
    """
    custom_id = json.dumps(key, ensure_ascii=False)
    return (
        f'{{"body": {request.body_json}, "custom_id": {custom_id}, "method": "POST", '
        f'"url": {json.dumps(CHAT_URL)}}}'
    )


def chunk_lines(
    pending: Mapping[str, ChatRequest], settings: BatchSettings
) -> Iterator[list[tuple[str, str]]]:
    """(key, line) chunks within the request-count and byte limits of one batch file."""
    chunk: list[tuple[str, str]] = []
    size = 0
    for key, request in pending.items():
        line = batch_line(key, request)
        line_bytes = len(line.encode("utf-8")) + 1
        if chunk and (
            len(chunk) >= settings.max_requests or size + line_bytes > settings.max_bytes
        ):
            yield chunk
            chunk, size = [], 0
        chunk.append((key, line))
        size += line_bytes
    if chunk:
        yield chunk


class Backend(Protocol):
    """Where batch files go: submit a JSONL file, then wait for its output lines."""

    def submit(self, path: Path) -> tuple[str, str]:
        """Start a batch on the file; (batch id, input file id)."""
        ...

    def wait(self, batch_id: str) -> tuple[str, list[dict[str, Any]]]:
        """Block until the batch ends; (final status, output + error lines)."""
        ...


class OpenAIBatches:
    """The OpenAI Batch API through the SDK: files.create, batches.create/retrieve, content."""

    def __init__(self, sdk: openai.OpenAI, poll_s: float) -> None:
        self._sdk = sdk
        self._poll_s = poll_s

    def submit(self, path: Path) -> tuple[str, str]:
        """Upload the file and create a 24 h batch on it."""
        with path.open("rb") as handle:
            uploaded = self._sdk.files.create(file=handle, purpose="batch")
        batch = self._sdk.batches.create(
            input_file_id=uploaded.id, endpoint=CHAT_URL, completion_window="24h"
        )
        return batch.id, uploaded.id

    def wait(self, batch_id: str) -> tuple[str, list[dict[str, Any]]]:
        """Poll every poll_s seconds (logging the counts) until a terminal status."""
        while True:
            batch = self._sdk.batches.retrieve(batch_id)
            counts = batch.request_counts
            log.info(
                "batch %s: %s (%s)",
                batch_id,
                batch.status,
                counts.model_dump() if counts is not None else "no counts yet",
            )
            if batch.status in TERMINAL:
                break
            time.sleep(self._poll_s)
        if batch.status == "failed" and not batch.output_file_id:
            reasons = [e.message for e in (batch.errors.data or [])] if batch.errors else []
            raise BatchError(f"batch {batch_id} failed as a whole: {reasons or 'no reason given'}")
        lines: list[dict[str, Any]] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                text = self._sdk.files.content(file_id).text
                lines.extend(json.loads(row) for row in text.splitlines() if row.strip())
        return batch.status, lines


class VllmRunBatch:
    """`vllm run-batch` on the same JSONL, run to completion in the job (no API, no discount)."""

    def __init__(self, command: Sequence[str]) -> None:
        self._command = list(command)

    def submit(self, path: Path) -> tuple[str, str]:
        """Run `<command> -i <path> -o <path>.out.jsonl`; the output path is the batch id."""
        out = path.with_suffix(".out.jsonl")
        command = [*self._command, "-i", str(path), "-o", str(out)]
        log.info("batch: running %s", " ".join(command))
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise BatchError(
                f"`{' '.join(command)}` exited with {done.returncode}: {done.stderr[-2000:]}"
            )
        return f"vllm-run-batch:{out}", str(path)

    def wait(self, batch_id: str) -> tuple[str, list[dict[str, Any]]]:
        """The output lines of a finished run."""
        out = Path(batch_id.removeprefix("vllm-run-batch:"))
        if not out.is_file():
            return "expired", []  # killed before it finished: resubmitted
        rows = out.read_text(encoding="utf-8").splitlines()
        return "completed", [json.loads(row) for row in rows if row.strip()]


class BatchRunner:
    """Sends pending requests as batches and imports the answers into the response store."""

    def __init__(
        self,
        backend: Backend,
        store: ResponseStore,
        workdir: Path,
        settings: BatchSettings,
        accept: Accept,
    ) -> None:
        self._backend = backend
        self._store = store
        self._workdir = workdir
        self._settings = settings
        self._accept = accept
        self._files: dict[str, Path] = {}  # batch id -> the input file written for it

    def run(self, pending: Mapping[str, ChatRequest]) -> tuple[dict[str, ChatResult], dict]:
        """Results by key, and {key: reason} of the items that could not be answered."""
        results: dict[str, ChatResult] = {}
        retryable: dict[str, str] = {}
        for batch_id, keys in self._store.open_batches():
            log.info("batch: resuming %s (%d requests) from an earlier run", batch_id, len(keys))
            self._files[batch_id] = self._input_path(keys)
            self._finish(batch_id, pending, results, retryable)
        for round_ in range(1, self._settings.rounds + 1):
            todo = {k: r for k, r in pending.items() if k not in results}
            if not todo:
                break
            log.info("batch round %d: %d requests to submit", round_, len(todo))
            retryable = {}
            batch_ids = [self._submit(chunk) for chunk in chunk_lines(todo, self._settings)]
            for batch_id in batch_ids:
                self._finish(batch_id, pending, results, retryable)
        lost = {
            k: retryable.get(k, "not answered by the batch") for k in pending if k not in results
        }
        return results, lost

    def _submit(self, chunk: list[tuple[str, str]]) -> str:
        self._workdir.mkdir(parents=True, exist_ok=True)
        path = self._input_path([key for key, _ in chunk])
        path.write_text("".join(line + "\n" for _, line in chunk), encoding="utf-8")
        batch_id, file_id = self._backend.submit(path)
        self._store.add_batch(batch_id, file_id, [key for key, _ in chunk])
        self._files[batch_id] = path
        log.info("batch: submitted %s (%d requests, file %s)", batch_id, len(chunk), path)
        return batch_id

    def _input_path(self, keys: Sequence[str]) -> Path:
        """The input file of a batch of these request keys."""
        return self._workdir / f"batch_{keys[0][:16]}_{len(keys)}.jsonl"

    def _finish(
        self,
        batch_id: str,
        pending: Mapping[str, ChatRequest],
        results: dict[str, ChatResult],
        retryable: dict[str, str],
    ) -> None:
        status, lines = self._backend.wait(batch_id)
        with self._store.deferred():  # one commit for the batch's rows and its closing
            self._import(batch_id, status, lines, pending, results, retryable)
        # the input file was only the upload: its requests are in the store with their replies
        path = self._files.pop(batch_id, None)
        if path is not None:
            path.unlink(missing_ok=True)
        log.info("batch %s: %s, %d results so far", batch_id, status, len(results))

    def _import(
        self,
        batch_id: str,
        status: str,
        lines: list[dict[str, Any]],
        pending: Mapping[str, ChatRequest],
        results: dict[str, ChatResult],
        retryable: dict[str, str],
    ) -> None:
        for line in lines:
            key = line.get("custom_id")
            if not isinstance(key, str) or key not in pending or key in results:
                continue  # another job's request in a shared store, or already answered
            response = line.get("response") or {}
            code = int(response.get("status_code") or 0)
            body = response.get("body") or {}
            if code == 200:
                results[key] = self._accept(key, pending[key], body)
            elif code in (400, 422):
                message = (body.get("error") or {}).get("message", "")
                results[key] = ChatResult(key, None, None, False, {}, f"HTTP {code}: {message}")
            else:
                retryable[key] = f"HTTP {code or '?'}: {line.get('error') or body.get('error')}"
        self._store.close_batch(batch_id, status)
