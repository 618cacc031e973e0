"""Replay mode: a recorded JSONL file served through an httpx2 mock transport to the real SDK."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2

from medinjection.llm.request import ChatRequest, request_key

RECORD_HINT = (
    "for the demo, rerun `python tools/record_demo_llm.py` (request-building code or inputs "
    "changed since the recording); for a real run set llm.mode: live"
)


def load_recording(path: str | Path) -> dict[str, dict[str, Any]]:
    """Replay entries by key from a JSONL file of {key, request, response}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"replay file {path} not found; {RECORD_HINT}")
    recording: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                recording[entry["key"]] = entry["response"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(
                    f"{path}:{number}: not a {{key, request, response}} line: {err}"
                ) from err
    return recording


def replay_transport(
    recording: Mapping[str, dict[str, Any]], base_url: str
) -> httpx2.MockTransport:
    """An httpx2 transport that answers chat completions from a recording, 404 on a miss."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        key = request_key(base_url, json.loads(request.content))
        if key not in recording:
            message = f"replay miss: request key {key} is not recorded; {RECORD_HINT}"
            return httpx2.Response(404, json={"error": {"message": message, "type": "replay"}})
        return httpx2.Response(200, json=recording[key])

    return httpx2.MockTransport(handle)


def completion_body(
    model: str, content: str, key: str, finish_reason: str = "stop"
) -> dict[str, Any]:
    """An authored chat.completion body carrying `content` (token counts are ~4 chars/token)."""
    prompt_tokens = completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-authored-{key[:16]}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def recording_entry(
    base_url: str, request: ChatRequest, response: dict[str, Any], note: str | None = None
) -> dict[str, Any]:
    """One replay line: {key, request, response} (+ an optional provenance note)."""
    body = request.body()
    entry = {"key": request_key(base_url, body), "request": body, "response": response}
    if note:
        entry["note"] = note
    return entry


def write_recording(entries: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Write replay entries as JSONL, one per line, in the given order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
