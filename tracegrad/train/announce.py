"""What a trainer tells its subscribers about the run: its start, each step's end, its end.

The step runner emits the events inside a step (``StepStarted``, ``Evaluated``,
``Proposed``, ``Decided``); this module builds the run's others from the trainer's
state. Nothing is built while the dispatcher has no subscriber. A run that fails after
its start emits ``ErrorRaised`` and then ``RunEnded`` with the error; one that fails
before (a refused ``run_dir``, a checkpoint made with other settings) emits nothing:
the caller gets the exception.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from tracegrad.events import BudgetExhausted, ErrorRaised, RunEnded, RunStarted, StepEnded
from tracegrad.train.history import StepRecord

if TYPE_CHECKING:
    from tracegrad.train.trainer import Trainer


class Announcer:
    """Emits a trainer's run-level events on its dispatcher (``trainer.events``)."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer
        self.started = False

    def run_started(self, version: str, score: float | None, *, resumed: bool) -> None:
        t = self.t
        self.started = True
        if not t.events:
            return
        epoch, batch = t.position
        t.events.emit(
            RunStarted(
                config=t._config(),
                settings=settings(t),
                parameters=t.runner.values(),
                version=version,
                score=score,
                resumed=resumed,
                step=len(t.history),
                position={"epoch": epoch, "batch": batch},
                total_steps=len(t._plan(0)) * t.epochs,
                run_dir=self._run_dir(),
            )
        )

    def step_ended(self, record: StepRecord) -> None:
        t = self.t
        if not t.events:
            return
        versions = t.history.versions
        before, after = versions.get(record.parent, {}), versions.get(record.version, {})
        changes = {n: {"old": before.get(n), "new": v} for n, v in after.items() if before.get(n) != v}
        t.events.emit(
            StepEnded(
                step=record.step,
                epoch=record.epoch,
                batch=record.batch,
                status=record.status,
                accepted=record.accepted,
                score=record.score,
                batch_score=record.batch_score,
                validation_score=record.validation_score,
                best_score=t.history.best_score,
                parent=record.parent,
                version=record.version,
                reason=record.reason,
                parameters=dict(after),
                changes=changes if record.accepted else {},
                spend=record.spend.to_json(),
                total=t.history.spend.to_json(),
                record=record.to_json(),
                reports=[p.report.to_json() for p in t.runner.proposals],
            )
        )

    def budget_exhausted(self, exc: BaseException) -> None:
        t = self.t
        if t.events:
            t.events.emit(BudgetExhausted(step=len(t.history), message=str(exc), spend=t.history.spend.to_json()))

    def run_ended(self, reason: str, error: str | None = None) -> None:
        t = self.t
        if not t.events:
            return
        history = t.history
        t.events.emit(
            RunEnded(
                reason=reason,
                best_version=history.best_version,
                best_score=history.best_score,
                parameters=t.runner.values(),
                steps=len(history),
                accepted=history.accepted,
                spend=history.spend.to_json(),
                run_dir=self._run_dir(),
                error=error,
            )
        )

    def failed(self, exc: BaseException) -> None:
        """The events of a run that ``exc`` ended (if it had started); a subscriber that
        fails here does not hide ``exc``."""
        if not self.started or not self.t.events:
            return
        with contextlib.suppress(Exception):
            self.t.events.emit(ErrorRaised.of(exc, step=len(self.t.history) + 1))
            self.run_ended(f"error: {type(exc).__name__}", f"{type(exc).__name__}: {exc}")

    def _run_dir(self) -> str | None:
        return os.fspath(self.t.run_dir.path) if self.t.run_dir is not None else None


def settings(t: Trainer) -> dict[str, Any]:
    """The trainer's settings that its checkpoint's ``config`` leaves out (a resumed run
    may change them)."""
    return {
        "epochs": t.epochs,
        "optimizer": type(t.optimizer).__name__,
        "model": model_of(t.optimizer),
        "stop": repr(t.stop) if t.stop is not None else None,
        "executor": type(t.executor).__name__,
        "concurrency": t.concurrency,
        "cache": t.cache is not None,
    }


def model_of(optimizer: Any) -> str | None:
    """The model an LLM optimizer (or a composite's LLM part) asks; None without one."""
    for opt in [optimizer, *getattr(optimizer, "optimizers", {}).values()]:
        if hasattr(opt, "llm") and hasattr(opt, "call_settings"):
            return str(opt.llm.model)
    return None


__all__ = ["Announcer", "model_of", "settings"]
