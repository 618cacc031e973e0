"""Persistent response store: SQLite (WAL) keyed by the request key, one commit per response
(one per imported batch inside `deferred()`).

The `request` and `response` columns hold the JSON text (sorted keys, UTF-8) zlib-compressed as
a BLOB: lossless, and about half the disk of the text (a full-scale translation run stores
~420K exchanges, most of them long abstracts twice). Rows written as TEXT by earlier versions
are read as they are.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT NOT NULL,
    mode TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (key, mode)
);
CREATE TABLE IF NOT EXISTS rejected (
    key TEXT NOT NULL,
    mode TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    reasons TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    input_file_id TEXT NOT NULL,
    keys TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class StoredResponse:
    """One cached exchange: the request spec (no credentials) and the raw response body."""

    key: str
    mode: str
    model: str
    request: dict[str, Any]
    response: dict[str, Any]
    # `request` as the store writes it, when the caller has it already (ChatRequest.body_json)
    request_json: str | None = field(default=None, compare=False, repr=False)


class ResponseStore:
    """Cache of chat-completion bodies; rows from replay mode never answer live requests.

    Only replies that passed their stage's check answer a later request (table `responses`);
    replies that failed it are kept apart in table `rejected` with the reasons, for inspection,
    and never answer anything: a rerun asks again.

    Thread-safe: the client's worker threads commit their responses as they arrive.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock = threading.Lock()
        self._deferred = 0

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Writes inside the block are committed once, when it ends (also on an error).

        For importing a batch's results: a job killed inside the block loses the uncommitted
        rows but not the batch, which stays open (`close_batch` is called inside the block) and
        is imported again on resume; a commit per row would cost more than the import itself.
        """
        with self._lock:
            self._deferred += 1
        try:
            yield
        finally:
            with self._lock:
                self._deferred -= 1
                if not self._deferred:
                    self._db.commit()

    def _commit(self) -> None:
        """Commit now unless inside `deferred()` (call with the lock held)."""
        if not self._deferred:
            self._db.commit()

    def get(self, key: str, mode: str) -> StoredResponse | None:
        """The stored response for `key` recorded in `mode`, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT key, mode, model, request, response FROM responses "
                "WHERE key = ? AND mode = ?",
                (key, mode),
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(row[0], row[1], row[2], _decoded(row[3]), _decoded(row[4]))

    def put(self, entry: StoredResponse) -> None:
        """Insert (or replace) one response and commit at once, so a killed job loses nothing."""
        row = (*_encoded(entry), time.time())
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, mode, model, request, response, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            self._commit()

    def reject(self, entry: StoredResponse, reasons: list[str]) -> None:
        """Keep a reply that failed its check apart (with why) and drop it from the cache."""
        row = (
            *_encoded(entry),
            json.dumps(list(reasons), ensure_ascii=False),
            time.time(),
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO rejected (key, mode, model, request, response, reasons, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            self._db.execute(
                "DELETE FROM responses WHERE key = ? AND mode = ?", (entry.key, entry.mode)
            )
            self._commit()

    def rejected(self, mode: str) -> list[tuple[str, list[str]]]:
        """(key, reasons) of every reply kept apart as failing its check, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, reasons FROM rejected WHERE mode = ? ORDER BY created", (mode,)
            ).fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def count(self, mode: str | None = None) -> int:
        """Number of stored responses (optionally of one mode)."""
        if mode is None:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        return self._db.execute(
            "SELECT COUNT(*) FROM responses WHERE mode = ?", (mode,)
        ).fetchone()[0]

    def entries(self, mode: str) -> list[StoredResponse]:
        """All stored responses of one mode, oldest first."""
        rows = self._db.execute(
            "SELECT key, mode, model, request, response FROM responses WHERE mode = ? "
            "ORDER BY created",
            (mode,),
        ).fetchall()
        return [StoredResponse(r[0], r[1], r[2], _decoded(r[3]), _decoded(r[4])) for r in rows]

    def add_batch(self, batch_id: str, input_file_id: str, keys: list[str]) -> None:
        """Persist a submitted batch at once, so a killed job resumes it instead of paying twice."""
        self._db.execute(
            "INSERT OR REPLACE INTO batches (batch_id, input_file_id, keys, status, created) "
            "VALUES (?, ?, ?, 'submitted', ?)",
            (batch_id, input_file_id, json.dumps(keys), time.time()),
        )
        self._db.commit()

    def open_batches(self) -> list[tuple[str, list[str]]]:
        """(batch id, request keys) of submitted batches whose results are not imported yet."""
        rows = self._db.execute(
            "SELECT batch_id, keys FROM batches WHERE status = 'submitted' ORDER BY created"
        ).fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def close_batch(self, batch_id: str, status: str) -> None:
        """Mark a batch finished (its final API status) once its results are imported."""
        with self._lock:
            self._db.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))
            self._commit()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def open_store(path: str | Path) -> ResponseStore:
    """Open (creating if needed) the SQLite store at `path` in WAL mode."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise IsADirectoryError(
            f"LLM cache path {path} is a directory; params.cache_path must name a .sqlite file"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Several jobs may share one cache file: WAL lets readers run beside the single writer, and the
    # busy timeout makes a second writer wait instead of failing.
    connection = sqlite3.connect(path, timeout=60.0, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(_SCHEMA)
    connection.commit()
    return ResponseStore(connection, path)


def export_recording(store_path: str | Path, out_path: str | Path, mode: str = "live") -> int:
    """Write a replay file ({key, request, response} per line) from a store's `mode` rows."""
    store = open_store(store_path)
    try:
        entries = store.entries(mode)
    finally:
        store.close()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as handle:
        for entry in entries:
            line = {"key": entry.key, "request": entry.request, "response": entry.response}
            handle.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    return len(entries)


# zlib level 1: nearly the ratio of the default level 6 on these rows, at a fraction of its time
ZLIB_LEVEL = 1


def _encoded(entry: StoredResponse) -> tuple[str, str, str, bytes, bytes]:
    """The (key, mode, model, request, response) columns of one entry, as stored."""
    request = entry.request_json or json.dumps(entry.request, ensure_ascii=False, sort_keys=True)
    response = json.dumps(entry.response, ensure_ascii=False, sort_keys=True)
    return (
        entry.key,
        entry.mode,
        entry.model,
        zlib.compress(request.encode("utf-8"), ZLIB_LEVEL),
        zlib.compress(response.encode("utf-8"), ZLIB_LEVEL),
    )


def _decoded(value: str | bytes) -> Any:
    """A request or response column's JSON value (compressed BLOB, or an older row's TEXT)."""
    if isinstance(value, bytes):
        return json.loads(zlib.decompress(value).decode("utf-8"))
    return json.loads(value)
