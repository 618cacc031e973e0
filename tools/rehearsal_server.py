"""The rehearsal's OpenAI-compatible server: full-scale Batch API answers with realistic trouble.

Built on tests/support/fake_openai_server.py (same HTTP routes, same SDK-facing objects) with:
- answers generated from the request itself: a translation request (response_format named
  "translation") gets the same JSON keys and option letters with every string turned into a
  French-looking stand-in; a synthesis request ("open_qa" / "mcq") gets exactly the number of
  items its prompt asks for, written from the document's own words (so every document's items
  differ); any other request (the judge's 1-token question) gets "0" or "1";
- INVALID_RATE (2%) of replies break the structure the stage checks (a translation loses an
  option letter; an open-QA reply holds one item too few; an MCQ has 3 options): half of them
  chosen per item (its retry with feedback fails again: quarantined, ~1%), half per request (the
  retry succeeds), so the stage's retry and quarantine paths both run at scale (the real models'
  invalid-output rates are not published: 2% is our assumption);
- Batch API trouble, each assumed of the real service as noted:
  * FAILED_LINE_RATE of a batch's lines come back in the error file with HTTP 500 (the real API
    reports per-line server errors in error_file_id and bills only successes; the workflow
    resubmits them next round);
  * the first batch created expires with half of its lines answered ("expired" after the 24 h
    window: the real API returns the completed part in output_file_id and the rest as
    batch_expired errors; we return only the completed part, the stricter case);
  * a 429 storm: STORM_SIZE consecutive POST /v1/batches answered 429 with Retry-After (the real
    API rate-limits batch creation per organisation; the SDK's backoff must ride it out);
- files kept on disk (a 417K-request translation run uploads several GB of JSONL over its
  shards), no per-request history kept in memory.

Usage: python tools/rehearsal_server.py --files-dir DIR [--port 0] -> prints "PORT <n>";
GET /v1/stats returns the counters (requests, statuses, batches, invalid replies, storm).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.fake_openai_server import FakeOpenAI, completion  # noqa: E402

INVALID_RATE = 0.02
FAILED_LINE_RATE = 0.002
STORM_SIZE = 5
COUNT = re.compile(r"exactement (\d+)")
BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
FILENAME = re.compile(rb'filename="([^"]*)"')
WORD = re.compile(r"\w+", re.UNICODE)


class DiskFiles:
    """The uploaded and output files of the fake Files API, one file each under a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def __contains__(self, file_id: object) -> bool:
        return isinstance(file_id, str) and (self.root / file_id).is_file()

    def __getitem__(self, file_id: str) -> bytes:
        return (self.root / file_id).read_bytes()

    def __setitem__(self, file_id: str, data: bytes) -> None:
        (self.root / file_id).write_bytes(data)


def _unit(seed: str) -> float:
    """A uniform number in [0, 1) from a string (deterministic per request)."""
    return int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16) / 16**12


def frenchify(text: str) -> str:
    """A French-looking stand-in of an English text: same length class, same word order."""
    get = _FR.get
    return " ".join([get(w.lower(), w + "e" if len(w) > 3 else w) for w in text.split(" ")])


_FR = {"the": "le", "of": "de", "and": "et", "in": "dans", "with": "avec", "a": "un",
       "is": "est", "for": "pour", "which": "quel", "patient": "patient", "following": "suivant",
       "most": "plus", "likely": "probable", "treatment": "traitement", "yes": "oui", "no": "non",
       "maybe": "peut-être"}  # fmt: skip


class RehearsalOpenAI(FakeOpenAI):
    """FakeOpenAI answering study requests validly (98%) with batch trouble, files on disk."""

    def __init__(self, files_dir: Path) -> None:
        super().__init__(latency=0.0, responder=self.reply)
        self.files = DiskFiles(files_dir)  # type: ignore[assignment]
        self.counters = {"invalid": 0, "failed_lines": 0, "expired": 0, "storm_429": 0}
        self._storm_left = STORM_SIZE
        self._expire_next = True
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ replies

    def reply(self, body: dict[str, Any]) -> str:
        """The text of the assistant's answer to a chat body."""
        fmt = (body.get("response_format") or {}).get("json_schema") or {}
        seed = json.dumps(body["messages"], sort_keys=True, ensure_ascii=False)
        first_user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        # half the invalid replies are sticky (the item fails its corrective retry too and is
        # quarantined), half transient (the retry with feedback gets a valid reply)
        invalid = (
            _unit("sticky:" + first_user) < INVALID_RATE / 2
            or _unit("invalid:" + seed) < INVALID_RATE / 2
        )
        if invalid and fmt:
            with self._count_lock:
                self.counters["invalid"] += 1
        name = fmt.get("name")
        if name == "translation":
            return json.dumps(self._translation(body, invalid), ensure_ascii=False)
        if name in ("open_qa", "mcq"):
            return json.dumps(self._synthesis(body, name, invalid, seed), ensure_ascii=False)
        return "1" if _unit("judge:" + seed) < 0.4 else "0"

    @staticmethod
    def _translation(body: dict[str, Any], invalid: bool) -> dict[str, Any]:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        payload = json.loads(user)
        out = {
            key: {k: frenchify(v) for k, v in value.items()}
            if isinstance(value, dict)
            else frenchify(value)
            for key, value in payload.items()
        }
        if invalid:
            options = out.get("options")
            if isinstance(options, dict) and options:
                options.pop(sorted(options)[-1])  # an option letter lost
            else:
                out["question"] = ""  # an empty field
        return out

    @staticmethod
    def _synthesis(body: dict[str, Any], name: str, invalid: bool, seed: str) -> dict[str, Any]:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        match = COUNT.search(user)
        count = int(match.group(1)) if match else 1
        words = WORD.findall(user.split("Document", 1)[-1]) or ["document"]
        rng = random.Random(seed)
        items: list[dict[str, Any]] = []
        for n in range(count - 1 if invalid and name == "open_qa" else count):
            question = f"Question {n + 1} : " + " ".join(rng.choices(words, k=14)) + " ?"
            if name == "open_qa":
                items.append({"question": question, "answer": " ".join(rng.choices(words, k=40))})
                continue
            letters = "ABC" if invalid else "ABCDE"
            options = [{"letter": x, "text": " ".join(rng.choices(words, k=5))} for x in letters]
            k = 1 if rng.random() < 0.55 else rng.randint(2, 3)
            items.append(
                {
                    "question": question,
                    "options": options,
                    "answers": sorted(rng.sample(letters, min(k, len(letters)))),
                }  # fmt: skip
            )
        return {"items": items}

    # ------------------------------------------------------------------ chat (no history kept)

    def chat(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, bytes]:
        """One chat completion, valid or deliberately broken (see the module docstring)."""
        return 200, {}, json.dumps(self._completion(body)).encode()

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat.completion body answering `body` (counted)."""
        seed = json.dumps(body, sort_keys=True, ensure_ascii=False)
        with self.lock:
            self.bodies[hashlib.sha256(seed.encode()).hexdigest()[:16]] += 1
        return completion(body["model"], self.reply(body), seed)

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        """The 'file' part of the SDK's multipart upload, split on its boundary.

        The base server's email parser takes seconds on a 100 MB batch file; the SDK sends the
        file as-is (no transfer encoding) between CRLF-delimited boundary lines.
        """
        found = BOUNDARY.search(content_type)
        if found is None:
            return super().upload(content_type, raw)
        for part in raw.split(b"--" + found.group(1).encode()):
            head, sep, data = part.partition(b"\r\n\r\n")
            if sep and b'name="file"' in head:
                name = FILENAME.search(head)
                file_id = self.new_id("file")
                self.files[file_id] = data.removesuffix(b"\r\n")
                filename = name.group(1).decode() if name else "upload.jsonl"
                return self._file_object(file_id, filename, "batch")
        return super().upload(content_type, raw)

    # ------------------------------------------------------------------ batches with trouble

    def create_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        """A new batch, or a 429 while the storm lasts (raised to the handler below)."""
        with self.lock:
            if self._storm_left > 0:
                self._storm_left -= 1
                self.counters["storm_429"] += 1
                raise RateLimited
        return super().create_batch(request)

    def _run_batch(self, batch: dict[str, Any]) -> None:
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].splitlines() if x]
        with self.lock:
            expire, self._expire_next = self._expire_next, False
        answered = lines[: len(lines) // 2] if expire else lines
        out, err = [], []
        for line in answered:
            entry: dict[str, Any] = {"id": self.new_id("batch_req"), "custom_id": line["custom_id"]}
            if _unit("fail:" + line["custom_id"] + batch["id"]) < FAILED_LINE_RATE:
                body = {"error": {"message": "The server had an error", "type": "server_error"}}
                entry |= {"response": {"status_code": 500, "request_id": "r", "body": body},
                          "error": None}  # fmt: skip
                err.append(json.dumps(entry))
                continue
            body = self._completion(line["body"])  # what chat() sends, without the round trip
            entry |= {"response": {"status_code": 200, "request_id": "r", "body": body},
                      "error": None}  # fmt: skip
            out.append(json.dumps(entry, ensure_ascii=False))
        for key, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                file_id = self.new_id("file")
                self.files[file_id] = ("\n".join(rows) + "\n").encode()
                batch[key] = file_id
        with self.lock:
            self.counters["failed_lines"] += len(err)
            self.counters["expired"] += int(expire)
        batch["status"] = "expired" if expire else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}

    def stats(self) -> dict[str, Any]:
        """Counters of the base server plus the trouble counters."""
        return super().stats() | self.counters


class RateLimited(Exception):
    """Raised by create_batch during the 429 storm; the handler answers 429."""


def serve(state: RehearsalOpenAI, port: int) -> None:
    """Serve forever on 127.0.0.1:port, printing 'PORT <n>' once listening."""
    from tests.support.fake_openai_server import QuietServer, make_handler

    base = make_handler(state)

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:  # noqa: N802
            try:
                super().do_POST()
            except RateLimited:
                self.send(429, b'{"error": {"message": "rate limit (rehearsal storm)"}}',
                          {"retry-after-ms": "200"})  # fmt: skip

    server = QuietServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


def main() -> None:
    """Command line: serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--files-dir", type=Path, required=True)
    args = parser.parse_args()
    serve(RehearsalOpenAI(args.files_dir), args.port)


if __name__ == "__main__":
    main()
