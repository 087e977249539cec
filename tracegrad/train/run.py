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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracegrad._io import atomic_write_json, read_json
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
        """The checkpoint's contents, checked to be a training checkpoint."""
        try:
            data = read_json(self.checkpoint_path)
        except (OSError, ValueError) as exc:
            raise TracegradError(f"cannot read the checkpoint {os.fspath(self.checkpoint_path)!r}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TracegradError(f"{os.fspath(self.checkpoint_path)!r} is not a tracegrad training checkpoint")
        if data.get("version", 0) > VERSION:
            raise TracegradError(f"{os.fspath(self.checkpoint_path)!r} was written by a newer tracegrad")
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
        without one); returns the cache entries kept."""
        self.log.truncate(int(checkpoint.get("log_offset", 0)) if checkpoint else 0)
        self.cache.truncate(int(checkpoint.get("cache_offset", 0)) if checkpoint else 0)
        if not self.cache.path.exists():
            return []
        with self.cache.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def close(self) -> None:
        self.log.close()
        self.cache.close()


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
