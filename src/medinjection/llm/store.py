"""Persistent response store: SQLite (WAL) keyed by the request key, one commit per response."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
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


class ResponseStore:
    """Cache of chat-completion bodies; rows from replay mode never answer live requests."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    def get(self, key: str, mode: str) -> StoredResponse | None:
        """The stored response for `key` recorded in `mode`, or None."""
        row = self._db.execute(
            "SELECT key, mode, model, request, response FROM responses WHERE key = ? AND mode = ?",
            (key, mode),
        ).fetchone()
        if row is None:
            return None
        return StoredResponse(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]))

    def put(self, entry: StoredResponse) -> None:
        """Insert (or replace) one response and commit at once, so a killed job loses nothing."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, mode, model, request, response, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                entry.key,
                entry.mode,
                entry.model,
                json.dumps(entry.request, ensure_ascii=False, sort_keys=True),
                json.dumps(entry.response, ensure_ascii=False, sort_keys=True),
                time.time(),
            ),
        )
        self._db.commit()

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
        return [StoredResponse(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4])) for r in rows]

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
    connection = sqlite3.connect(path, timeout=60.0)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(_SCHEMA)
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
