"""A disk cache of model responses, keyed on the whole request.

Stored in one SQLite file in WAL mode, so many threads and processes can read and write
it at once without corrupting it; a writer that finds the file locked waits (busy
timeout) instead of failing. Each operation opens its own short-lived connection, which
keeps the cache safe to use across threads, forks and event loops.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
from pathlib import Path

from tracegrad.llm.request import LLMRequest, TransportResponse, canonical_json

logger = logging.getLogger("tracegrad.llm")

CACHE_FILE = "llm.sqlite"
BUSY_TIMEOUT_S = 60.0


def default_cache_path() -> Path:
    """``$TRACEGRAD_CACHE_DIR/llm.sqlite``, else ``~/.cache/tracegrad/llm.sqlite``."""
    base = os.environ.get("TRACEGRAD_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "tracegrad"
    return root / CACHE_FILE


class ResponseCache:
    """Responses by request key. ``path`` may be a directory or a ``.sqlite`` file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        p = Path(path).expanduser() if path is not None else default_cache_path()
        self.path = p / CACHE_FILE if p.suffix != ".sqlite" else p
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)  # sets the busy timeout
        if not self._ready:
            self._initialize(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _initialize(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL and create the table. Several processes creating the
        same new file race for an exclusive lock that SQLite's busy timeout does not
        cover, so a locked database is retried here for a while."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                # WAL is a property of the file: set once, it stays for every connection.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS responses ("
                    " key TEXT PRIMARY KEY, model TEXT, request TEXT NOT NULL,"
                    " response TEXT NOT NULL, created REAL NOT NULL)"
                )
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + random.random() * 0.05)
        self._ready = True

    def get(self, request: LLMRequest) -> TransportResponse | None:
        """The stored response for ``request``, or None."""
        try:
            conn = self._connect()
            try:
                row = conn.execute("SELECT response FROM responses WHERE key = ?", (request.key,)).fetchone()
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:  # a broken cache must not break a run
            logger.warning("LLM cache read failed (%s): %s", self.path, exc)
            return None
        if row is None:
            return None
        try:
            return TransportResponse.from_json(row[0])
        except (ValueError, TypeError) as exc:
            logger.warning("ignoring unreadable LLM cache entry %s: %s", request.key, exc)
            return None

    def put(self, request: LLMRequest, response: TransportResponse) -> None:
        """Store (or replace) the response for ``request``."""
        try:
            conn = self._connect()
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO responses (key, model, request, response, created) VALUES (?, ?, ?, ?, ?)",
                    (
                        request.key,
                        request.model,
                        canonical_json(request.key_data()),
                        response.to_json(),
                        time.time(),
                    ),
                )
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            logger.warning("LLM cache write failed (%s): %s", self.path, exc)

    def __len__(self) -> int:
        conn = self._connect()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        finally:
            conn.close()

    def clear(self) -> None:
        """Delete every stored response."""
        conn = self._connect()
        try:
            conn.execute("DELETE FROM responses")
        finally:
            conn.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
