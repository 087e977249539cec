"""Stop conditions: when a training run ends before its epochs run out.

A condition reads the run so far (``RunState``) and returns why it stops, or None.
Conditions compose: ``a | b`` stops when either does, ``a & b`` when both do::

    StopAfter(steps=20) | TargetScore(1.0) | StopAfter(cost_usd=0.50)

The trainer checks its condition before every step (a run whose starting parameters
already reach the target makes no step) and after it. Limits on calls, tokens and
dollars count the whole run -- optimizer calls and evaluations -- and stop it between
steps; a hard ``tracegrad.Budget`` on a client's ledger stops it within a step (the
step in progress is dropped, nothing of it applied).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracegrad.train.results import Spend

if TYPE_CHECKING:
    from tracegrad.train.history import History


@dataclass(frozen=True)
class RunState:
    """What stop conditions read: steps done, the epoch, the run's spend, the scores.

    ``score`` is the current parameters' score (validation when there is a validation
    set, else the last batch's); ``best_score`` the best so far.
    """

    steps: int
    epoch: int
    spend: Spend
    score: float | None
    best_score: float | None
    history: History


class Stop(ABC):
    """Base class of stop conditions: ``__call__(state) -> reason or None``."""

    @abstractmethod
    def __call__(self, state: RunState) -> str | None:
        """Why the run should stop now, or None to go on."""

    def __or__(self, other: Stop) -> Stop:
        return AnyOf(self, other)

    def __and__(self, other: Stop) -> Stop:
        return AllOf(self, other)


class AnyOf(Stop):
    """Stops when any of its conditions does (the first one's reason)."""

    def __init__(self, *conditions: Stop) -> None:
        self.conditions = tuple(
            c for cond in conditions for c in (cond.conditions if isinstance(cond, AnyOf) else (cond,))
        )

    def __call__(self, state: RunState) -> str | None:
        for condition in self.conditions:
            reason = condition(state)
            if reason:
                return reason
        return None

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.conditions))


class AllOf(Stop):
    """Stops when all of its conditions do (their reasons joined)."""

    def __init__(self, *conditions: Stop) -> None:
        self.conditions = tuple(
            c for cond in conditions for c in (cond.conditions if isinstance(cond, AllOf) else (cond,))
        )

    def __call__(self, state: RunState) -> str | None:
        reasons = []
        for condition in self.conditions:
            reason = condition(state)
            if not reason:
                return None
            reasons.append(reason)
        return " and ".join(reasons)

    def __repr__(self) -> str:
        return "(" + " & ".join(map(repr, self.conditions)) + ")"


@dataclass(frozen=True, repr=False)
class StopAfter(Stop):
    """Stops once any given limit is reached: steps, model calls, tokens or dollars."""

    steps: int | None = None
    calls: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None

    def __call__(self, state: RunState) -> str | None:
        spend = state.spend
        if self.steps is not None and state.steps >= self.steps:
            return f"{state.steps} steps"
        if self.calls is not None and spend.calls >= self.calls:
            return f"{spend.calls} model calls (limit {self.calls})"
        if self.tokens is not None and spend.total_tokens >= self.tokens:
            return f"{spend.total_tokens} tokens (limit {self.tokens})"
        if self.cost_usd is not None and spend.cost_usd >= self.cost_usd:
            return f"${spend.cost_usd:.4f} spent (limit ${self.cost_usd:.4f})"
        return None

    def __repr__(self) -> str:
        given = {k: v for k, v in vars(self).items() if v is not None}
        return "StopAfter(" + ", ".join(f"{k}={v!r}" for k, v in given.items()) + ")"


@dataclass(frozen=True)
class TargetScore(Stop):
    """Stops once the current parameters score at least ``score``."""

    score: float

    def __call__(self, state: RunState) -> str | None:
        if state.score is not None and state.score >= self.score:
            return f"score {state.score:.4g} reached the target {self.score:.4g}"
        return None


@dataclass(frozen=True)
class NoImprovement(Stop):
    """Stops after ``patience`` steps in a row that did not raise the best score."""

    patience: int

    def __call__(self, state: RunState) -> str | None:
        steps = state.history.steps
        if len(steps) < self.patience:
            return None
        best_before = state.history.initial_score
        last_gain = 0
        for record in steps:
            score = record.score
            if best_before is None or score > best_before:
                best_before = score
                last_gain = record.step
        if state.steps - last_gain >= self.patience:
            return f"no improvement in {state.steps - last_gain} steps"
        return None


def as_stop(stop: Stop | None) -> Stop | None:
    if stop is not None and not callable(stop):
        raise TypeError(f"a stop condition is a callable (state) -> reason or None, not {stop!r}")
    return stop


__all__ = ["AllOf", "AnyOf", "NoImprovement", "RunState", "Stop", "StopAfter", "TargetScore", "as_stop"]
