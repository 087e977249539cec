"""Run events: what happened during training or an optimizer step, as typed, JSON-ready data.

The trainer and the optimizers emit events through one ``Dispatcher`` (an optimizer's
``events``; a trainer uses its optimizer's). A subscriber is any callable taking an
event; ``optimizer.subscribe(fn)`` and ``train(..., callbacks=[fn])`` add one. The
progress bar, the run directory's ``log.jsonl`` and the MLflow logger are subscribers
too.

A training run emits, in order::

    RunStarted
      StepStarted  Evaluated(batch)  Proposed...  Evaluated(candidate / validation)...
      Decided  StepEnded                                      -- once per step
    [BudgetExhausted]  RunEnded

(a step whose batch already succeeds, or whose feedback reaches no parameter, has no
proposals, evaluations of candidates or decision; a step cut short by a spent budget
or an error has no ``StepEnded``). A failing run emits ``ErrorRaised`` and then
``RunEnded`` with its ``error``, so a subscriber can always close on ``RunEnded``.
With a run directory, ``StepEnded`` comes before the step's checkpoint is written and
``RunEnded`` after the final one (a subscriber can report on the finished directory).
An optimizer used on its own emits ``Proposed`` from ``step()`` and ``Decided`` from
``apply()``.

Every field is JSON data (parameter values as their kinds write them), so an event
can be logged or sent as it is: ``event.to_json()``. Events are built only when a
dispatcher has subscribers: without any, emitting costs nothing.

A subscriber that raises does not break the run: its first failure is logged (with
its traceback, on the ``tracegrad.events`` logger) and it keeps receiving events;
later failures of the same subscriber are counted, not logged again. A *strict*
subscriber (``subscribe(fn, strict=True)``) is part of the run instead: its
exceptions reach the code that emitted the event (the run log, which checkpoints
depend on, is one). Subscribers are called in the emitting thread, in the order they
subscribed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from tracegrad.errors import TracegradError

logger = logging.getLogger("tracegrad.events")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base class of run events: ``kind`` names the type, ``timestamp`` is when it happened
    (seconds since the epoch)."""

    kind: ClassVar[str] = "event"
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The event as JSON data: ``{"event": kind, **fields}``."""
        data = {"event": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}
        return json.loads(json.dumps(data, default=repr))


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """A training run started (``resumed``: continued from a checkpoint after ``step`` steps).

    ``config`` is what a checkpoint must match to be resumed, ``settings`` the trainer's
    other settings; ``parameters`` the starting values and ``version`` their digest;
    ``score`` their validation score (None without a validation set); ``position`` the
    epoch and batch the run starts at; ``total_steps`` the steps its epochs plan.
    """

    kind: ClassVar[str] = "run_started"
    config: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    score: float | None = None
    resumed: bool = False
    step: int = 0
    position: dict[str, int] = field(default_factory=dict)
    total_steps: int = 0
    run_dir: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunEnded(Event):
    """A training run ended: why (``reason``), with which parameters and score, at what cost.

    ``error`` is set (``"Type: message"``) when the run ended by an exception; the
    parameters are then those of the last finished step.
    """

    kind: ClassVar[str] = "run_ended"
    reason: str = ""
    best_version: str = ""
    best_score: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    accepted: int = 0
    spend: dict[str, Any] = field(default_factory=dict)
    run_dir: str | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    """A training step started on the batch ``examples``, from the parameters ``version``."""

    kind: ClassVar[str] = "step_started"
    step: int = 0
    epoch: int = 0
    batch: int = 0
    examples: list[int] = field(default_factory=list)
    version: str = ""


@dataclass(frozen=True, kw_only=True)
class StepEnded(Event):
    """A training step ended (see ``StepRecord`` for ``status`` and the scores).

    ``parameters`` are the values the step ended with (those of ``version``) and
    ``changes`` maps each parameter the step changed to ``{"old": ..., "new": ...}``;
    ``spend`` is the step's cost, ``total`` the run's so far; ``record`` the whole
    ``StepRecord`` and ``reports`` its proposals' ``StepReport`` data (the exact request
    and reply of the optimizer's model), in sample order.
    """

    kind: ClassVar[str] = "step_ended"
    step: int = 0
    epoch: int = 0
    batch: int = 0
    status: str = ""
    accepted: bool = False
    score: float | None = None
    batch_score: float | None = None
    validation_score: float | None = None
    best_score: float | None = None
    parent: str = ""
    version: str = ""
    reason: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    spend: dict[str, Any] = field(default_factory=dict)
    total: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    reports: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Proposed(Event):
    """An optimizer proposed new values (nothing is applied yet).

    ``step`` is the training step (or, for an optimizer on its own, the optimizer's
    step), ``sample`` the proposal's index among the step's; ``changes`` maps each
    parameter it would change to ``{"old": ..., "new": ...}``; ``reasoning`` is the
    model's, ``reason`` why nothing was proposed (when so).
    """

    kind: ClassVar[str] = "proposed"
    step: int = 0
    sample: int = 0
    optimizer: str = ""
    status: str = ""
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasoning: str = ""
    reason: str = ""
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0

    @classmethod
    def of(cls, proposal: Any, *, step: int, sample: int = 0) -> Proposed:
        """The event of an optimizer's ``Proposal``; values are written through their
        parameters' kinds (``repr`` for one that does not fit its kind)."""
        report, optimizer = proposal.report, proposal.optimizer
        changes = {}
        for u in report.updates:
            if u.changed:
                param = optimizer.parameter(u.name) if optimizer is not None else None
                changes[u.name] = {"old": _json_value(param, u.old), "new": _json_value(param, u.new)}
        return cls(
            step=step,
            sample=sample,
            optimizer=report.optimizer,
            status=report.status,
            changes=changes,
            reasoning=report.reasoning,
            reason=report.reason,
            calls=report.calls,
            prompt_tokens=report.prompt_tokens,
            completion_tokens=report.completion_tokens,
            cost_usd=report.cost_usd,
        )


@dataclass(frozen=True, kw_only=True)
class Evaluated(Event):
    """Parameters were scored: ``split`` is ``batch`` (the step's starting parameters on
    its batch), ``candidate`` (proposal ``sample`` on the batch) or ``validation``
    (proposal ``sample`` on the validation set); ``spend`` is what it cost."""

    kind: ClassVar[str] = "evaluated"
    step: int = 0
    split: str = "batch"
    sample: int | None = None
    version: str = ""
    score: float = 0.0
    examples: int = 0
    spend: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Decided(Event):
    """Proposals were accepted or rejected, and why: in training, once per step that made
    proposals (``sample`` and ``version`` are the kept one's); for an optimizer on its
    own, by ``apply()`` (rejected when a value does not fit its kind)."""

    kind: ClassVar[str] = "decided"
    step: int = 0
    accepted: bool = False
    reason: str = ""
    sample: int | None = None
    version: str | None = None
    score: float | None = None


@dataclass(frozen=True, kw_only=True)
class BudgetExhausted(Event):
    """A budget ran out (``message`` says which); the run stops after ``step`` steps."""

    kind: ClassVar[str] = "budget_exhausted"
    step: int = 0
    message: str = ""
    spend: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ErrorRaised(Event):
    """An exception ended a run or an optimizer step: its type and message, and the step
    in progress (None before the first)."""

    kind: ClassVar[str] = "error"
    step: int | None = None
    error: str = ""
    message: str = ""

    @classmethod
    def of(cls, exc: BaseException, *, step: int | None = None) -> ErrorRaised:
        return cls(step=step, error=type(exc).__name__, message=str(exc))


Subscriber = Callable[[Event], Any]


@dataclass(eq=False)
class _Subscription:
    fn: Subscriber
    strict: bool
    failures: int = 0


class Dispatcher:
    """Delivers events to subscribers (see the module docstring).

    A copy of a dispatcher is the same dispatcher (an optimizer's copies, made for
    candidate search, report to the same subscribers); a pickled one arrives with no
    subscribers (they belong to the process that added them).
    """

    def __init__(self) -> None:
        self._subs: tuple[_Subscription, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber, *, strict: bool = False) -> Callable[[], None]:
        """Call ``fn(event)`` for every event from now on; returns a function that
        unsubscribes it. ``strict``: its exceptions propagate to the emitter."""
        if not callable(fn):
            raise TracegradError(f"a subscriber is a callable taking an event, not {fn!r}")
        sub = _Subscription(fn, strict)
        with self._lock:
            self._subs = (*self._subs, sub)

        def unsubscribe() -> None:
            with self._lock:
                self._subs = tuple(s for s in self._subs if s is not sub)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber, in the order they subscribed."""
        for sub in self._subs:
            try:
                sub.fn(event)
            except Exception:
                if sub.strict:
                    raise
                sub.failures += 1
                if sub.failures == 1:
                    logger.warning(
                        "event subscriber %s raised on a %s event; it keeps receiving events, "
                        "and its further errors are not logged",
                        _name(sub.fn),
                        event.kind,
                        exc_info=True,
                    )

    def __bool__(self) -> bool:
        return bool(self._subs)

    def __len__(self) -> int:
        return len(self._subs)

    def __copy__(self) -> Dispatcher:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Dispatcher:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Dispatcher, ())

    def __repr__(self) -> str:
        return f"<Dispatcher with {len(self._subs)} subscribers>"


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def _json_value(param: Any, value: Any) -> Any:
    if param is not None:
        try:
            return param.kind.to_json(value)
        except Exception:  # a proposed value that does not fit its kind is shown as it is
            pass
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


__all__ = [
    "BudgetExhausted",
    "Decided",
    "Dispatcher",
    "ErrorRaised",
    "Evaluated",
    "Event",
    "Proposed",
    "RunEnded",
    "RunStarted",
    "StepEnded",
    "StepStarted",
    "Subscriber",
]
