"""Run directories: the checkpoint a run resumes from, and its JSON-lines log.

A run directory holds:

* ``checkpoint.json`` -- everything a resumed run needs, in one file written
  atomically after every step (a temporary file beside it, fsynced, renamed over it):
  the parameter values, the optimizer state, the candidate pool, the position in the
  data (epoch, batch, seed), the search's random state, the history with its costs, and
  how long the log and the cache file were at that moment. A reader never sees a
  half-written checkpoint; a run killed at any moment loses at most the step in
  progress.
* ``parameters.json`` -- the current parameters and optimizer state as a module
  checkpoint (``module.load(path)``, ``optimizer.load(path, module)``), written after
  the checkpoint; it is for people, resuming never reads it.
* ``log.jsonl`` -- one JSON object per line: the run's start, every proposal (with
  the exact request and raw reply of the optimizer's model), every step, the stop
  (written from the run's events by ``EventLog``; a run that failed ends with an
  ``error`` line instead, which resuming cuts off with the rest of the lost step).
* ``cache.jsonl`` -- the evaluation cache, one ``[key, result]`` per line, appended
  at each checkpoint with what the step added (so a checkpoint costs what the step
  did, not what the run did).
* ``trace.json`` -- the trace of the last step that had one (``tracegrad.visualize.save_trace``),
  for the run report; written atomically after each step, never needed to resume.

The checkpoint records how long the two JSON-lines files were when it was written; on
resume, what was appended after it (by the step that was lost) is cut off, so the log
tells each step once and the cache holds what the checkpoint knew.

Temporary files left by a write that was killed are removed on resume.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracegrad._io import atomic_write_json, parse_json, read_json
from tracegrad.errors import TracegradError
from tracegrad.events import ErrorRaised, Event, RunEnded, RunStarted, StepEnded

CHECKPOINT = "checkpoint.json"
PARAMETERS = "parameters.json"
LOG = "log.jsonl"
CACHE = "cache.jsonl"
TRACE = "trace.json"
FORMAT = "tracegrad.train"
VERSION = 1


class RunLog:
    """An append-only JSON-lines file; ``sync`` makes what was written durable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def write(self, event: dict[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(event, ensure_ascii=False, default=repr) + "\n")
        self._fh.flush()

    def sync(self) -> int:
        """Flush and fsync; the log's length in bytes."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, length: int) -> None:
        """Cut the log back to ``length`` bytes (what a checkpoint recorded)."""
        self.close()
        if self.path.exists() and self.path.stat().st_size > length:
            with self.path.open("r+b") as fh:
                fh.truncate(length)
                fh.flush()
                os.fsync(fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class EventLog:
    """Writes a run's events to its ``log.jsonl``: a strict subscriber (the checkpoint records
    the log's length, so a failed write must stop the run).

    Lines: ``start`` (or ``resume``) from ``RunStarted``; each ``proposal`` (its record
    and its report) and the ``step`` from ``StepEnded``; ``stop`` from ``RunEnded``;
    ``error`` from ``ErrorRaised``. Other events are not logged.
    """

    def __init__(self, log: RunLog) -> None:
        self.log = log

    def __call__(self, event: Event) -> None:
        for line in log_lines(event):
            self.log.write(line)


def log_lines(event: Event) -> list[dict[str, Any]]:
    """The ``log.jsonl`` lines of an event (see ``EventLog``)."""
    if isinstance(event, RunStarted):
        if event.resumed:
            return [{"event": "resume", "step": event.step, "position": event.position}]
        return [{"event": "start", "config": event.config, "version": event.version, "score": event.score}]
    if isinstance(event, StepEnded):
        proposals = [
            {"event": "proposal", "step": event.step, **record, "report": report}
            for record, report in zip(event.record.get("proposals", []), event.reports, strict=True)
        ]
        return [*proposals, {"event": "step", **event.record}]
    if isinstance(event, RunEnded) and event.error is None:
        stop = {"reason": event.reason, "best_version": event.best_version, "best_score": event.best_score}
        return [{"event": "stop", **stop}]
    if isinstance(event, ErrorRaised):
        return [{"event": "error", "step": event.step, "error": event.error, "message": event.message}]
    return []


class RunDir:
    """The files of one run (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.checkpoint_path = self.path / CHECKPOINT
        self.parameters_path = self.path / PARAMETERS
        self.log = RunLog(self.path / LOG)
        self.cache = RunLog(self.path / CACHE)

    def __repr__(self) -> str:
        return f"RunDir({os.fspath(self.path)!r})"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def clean(self) -> list[Path]:
        """Remove temporary files that killed writes left behind; returns them."""
        removed = []
        if self.path.is_dir():
            for name in (CHECKPOINT, PARAMETERS, TRACE):
                for tmp in self.path.glob(f".{name}.*.tmp"):
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp)
        return removed

    def read(self) -> dict[str, Any]:
        """The checkpoint's contents, checked to be a training checkpoint whose fields have
        the types a resumed run reads; anything else raises ``TracegradError``."""
        where = os.fspath(self.checkpoint_path)
        try:
            data = read_json(self.checkpoint_path)
        except OSError as exc:
            raise TracegradError(f"cannot read the checkpoint {where!r}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TracegradError(f"{where!r} is not a tracegrad training checkpoint")
        version = data.get("version")
        if type(version) is not int or version < 1:
            raise TracegradError(f"{where!r} has no valid checkpoint version (a positive integer), got {version!r}")
        if version > VERSION:
            raise TracegradError(f"{where!r} was written by a newer tracegrad")
        _check_fields(data, where)
        return data

    def write(self, state: dict[str, Any], cache_entries: Sequence[list[Any]] = ()) -> None:
        """Append ``cache_entries`` to the cache file, then write the checkpoint atomically
        with the lengths of the synced log and cache files."""
        for entry in cache_entries:
            self.cache.write(entry)
        offsets = {"log_offset": self.log.sync(), "cache_offset": self.cache.sync()}
        atomic_write_json(self.checkpoint_path, {"format": FORMAT, "version": VERSION, **state, **offsets})

    def rewind(self, checkpoint: dict[str, Any] | None) -> list[list[Any]]:
        """Cut the log and cache files back to what ``checkpoint`` recorded (to nothing
        without one); returns the cache entries kept, each a ``[key, result]`` pair (a
        malformed cache file raises ``TracegradError`` naming the line)."""
        offsets = [_offset(checkpoint, k) if checkpoint else 0 for k in ("log_offset", "cache_offset")]
        self.log.truncate(offsets[0])
        self.cache.truncate(offsets[1])
        if not self.cache.path.exists():
            return []
        entries = []
        with self.cache.path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                name = f"{os.fspath(self.cache.path)}:{n}"
                try:
                    entry = parse_json(line.decode("utf-8"), name)
                except UnicodeDecodeError:
                    raise TracegradError(f"{name!r} is not UTF-8 text") from None
                if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                    raise TracegradError(f"{name!r} is not an evaluation cache entry (a [key, result] pair)")
                if not isinstance(entry[1], dict):
                    raise TracegradError(f"{name!r} is not an evaluation cache entry (its result is not an object)")
                entries.append(entry)
        return entries

    def close(self) -> None:
        self.log.close()
        self.cache.close()


#: The fields a resumed run reads, with the JSON types they must have.
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "step": int,
    "position": dict,
    "config": dict,
    "parameters": dict,
    "optimizer": dict,
    "pool": dict,
    "rng": list,
    "history": dict,
    "log_offset": int,
    "cache_offset": int,
}


def _check_fields(data: dict[str, Any], where: str) -> None:
    """Raise ``TracegradError`` unless every field of a training checkpoint is usable."""
    for name, kind in _FIELDS.items():
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise TracegradError(f"{where!r} is not a usable training checkpoint: {name!r} is {_what(value)}")
    position = data["position"]
    for name in ("epoch", "batch"):
        value = position.get(name)
        if type(value) is not int or value < 0:
            raise TracegradError(f"{where!r} is not a usable training checkpoint: position {name!r} is {_what(value)}")
    rng = data["rng"]
    try:
        random.Random().setstate((rng[0], tuple(rng[1]), rng[2]))
    except (TypeError, ValueError, IndexError, KeyError, OverflowError):
        raise TracegradError(f"{where!r} is not a usable training checkpoint: 'rng' is not a random state") from None


def _offset(checkpoint: dict[str, Any], name: str) -> int:
    value = checkpoint.get(name, 0)
    if type(value) is not int or value < 0:
        raise TracegradError(f"the checkpoint's {name!r} is not a file length: {_what(value)}")
    return value


def _what(value: Any) -> str:
    """A value as an error names it: its repr when short, else its type."""
    if value is None:
        return "missing or null"
    shown = repr(value) if isinstance(value, int | float | str) and len(str(value)) <= 40 else None
    return shown if shown is not None and not isinstance(value, bool) else f"a {type(value).__name__}"


__all__ = [
    "CACHE",
    "CHECKPOINT",
    "FORMAT",
    "LOG",
    "PARAMETERS",
    "TRACE",
    "VERSION",
    "EventLog",
    "RunDir",
    "RunLog",
    "log_lines",
]
