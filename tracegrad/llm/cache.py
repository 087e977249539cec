"""A disk cache of model responses, keyed on the whole request.

Stored in one SQLite file in WAL mode, so many threads and processes can read and write
it at once without corrupting it; a writer that finds the file locked waits (busy
timeout) instead of failing. Each operation opens its own short-lived connection, which
keeps the cache safe to use across threads, forks and event loops.

A broken cache never breaks a call: a store that cannot be opened, read or written (a
read-only or missing location, a file that is not a database, a damaged one) is
bypassed with one warning, and the calls go to the model; an entry that does not decode
into a response (damaged bytes, a row of the wrong type) is a miss, replaced by the
next answer. Credentials are never stored: the request column holds the request with
its secrets redacted (``LLMRequest.key_data``) and the response has them scrubbed.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from tracegrad._secrets import scrub
from tracegrad.llm.errors import LLMError
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
        # Set when the store failed: its operations are then skipped (warned of once).
        self._unusable: dict[str, str] = {}

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)  # sets the busy timeout
        try:
            if not self._ready:
                self._initialize(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
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

    def _failed(self, operation: str, exc: BaseException) -> None:
        """Stop using the store for ``operation`` (``read`` or ``write``; both when it
        cannot even be opened), with one warning."""
        operations = (operation,) if self._ready else ("read", "write")
        if all(op in self._unusable for op in operations):
            return
        for op in operations:
            self._unusable[op] = f"{type(exc).__name__}: {exc}"
        what = "cannot be opened" if not self._ready else f"cannot be {'read' if operation == 'read' else 'written'}"
        logger.warning("LLM cache %s %s (%s: %s); calls go on without it", self.path, what, type(exc).__name__, exc)

    def get(self, request: LLMRequest) -> TransportResponse | None:
        """The stored response for ``request``, or None (also when the store is unusable)."""
        if "read" in self._unusable:
            return None
        try:
            conn = self._connect()
            try:
                conn.text_factory = bytes  # decoded below, so that damaged text is a miss
                row = conn.execute("SELECT response FROM responses WHERE key = ?", (request.key,)).fetchone()
            finally:
                conn.close()
        except _STORE_ERRORS as exc:  # a broken cache must not break a run
            self._failed("read", exc)
            return None
        if row is None:
            return None
        try:
            return TransportResponse.from_json(row[0] if isinstance(row[0], bytes | str) else repr(row[0]))
        except ValueError as exc:
            logger.warning("ignoring an unreadable LLM cache entry %s: %s", request.key[:12], _first_line(exc))
            return None

    def put(self, request: LLMRequest, response: TransportResponse) -> None:
        """Store (or replace) the response for ``request``, its credentials scrubbed."""
        if "write" in self._unusable:
            return
        secrets = request.secrets()
        try:
            conn = self._connect()
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO responses (key, model, request, response, created) VALUES (?, ?, ?, ?, ?)",
                    (
                        request.key,
                        request.model,
                        canonical_json(request.key_data()),
                        scrub(response.to_json(), secrets),
                        time.time(),
                    ),
                )
            finally:
                conn.close()
        except _STORE_ERRORS as exc:
            self._failed("write", exc)

    def _query(self, sql: str) -> Any:
        try:
            conn = self._connect()
            try:
                return conn.execute(sql).fetchone()
            finally:
                conn.close()
        except _STORE_ERRORS as exc:
            raise LLMError(f"the LLM cache {os.fspath(self.path)!r} cannot be used: {exc}") from exc

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM responses")[0])

    def clear(self) -> None:
        """Delete every stored response."""
        self._query("DELETE FROM responses")

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


# What a missing, read-only, locked, foreign or damaged store raises.
_STORE_ERRORS = (sqlite3.Error, OSError, ValueError, MemoryError)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
