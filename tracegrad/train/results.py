"""What an evaluation returns: per-example results, their mean, and what they cost."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tracegrad.train.data import Example
from tracegrad.train.guides import Score

#: Dollars are kept to this many decimals: a spend found as the difference of two
#: running float totals is then the same whatever the totals were (a resumed run's
#: ledgers start again from zero).
COST_DIGITS = 10


@dataclass(frozen=True)
class Spend:
    """Calls, tokens and dollars; add and subtract them (ledger snapshots convert)."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __post_init__(self) -> None:
        object.__setattr__(self, "cost_usd", round(float(self.cost_usd), COST_DIGITS))

    def __add__(self, other: Spend) -> Spend:
        return Spend(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: Spend) -> Spend:
        return Spend(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    @classmethod
    def of(cls, source: Any) -> Spend:
        """From a ``Usage`` ledger, a ledger snapshot, a ``StepReport`` or a mapping."""
        if isinstance(source, Mapping):
            get = source.get
        else:
            if callable(getattr(source, "snapshot", None)):
                source = source.snapshot()
            get = lambda name, default=0: getattr(source, name, default)  # noqa: E731
        return cls(
            calls=int(get("calls", 0) or 0),
            cache_hits=int(get("cache_hits", 0) or 0),
            prompt_tokens=int(get("prompt_tokens", 0) or 0),
            completion_tokens=int(get("completion_tokens", 0) or 0),
            cost_usd=float(get("cost_usd", 0.0) or 0.0),
        )

    @classmethod
    def total(cls, ledgers: Iterable[Any]) -> Spend:
        """The sum of several ledgers' current totals."""
        out = cls()
        for ledger in ledgers:
            out = out + cls.of(ledger)
        return out

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        return f"{self.calls} calls, {self.prompt_tokens}+{self.completion_tokens} tokens, ${self.cost_usd:.4f}"


@dataclass
class ExampleResult:
    """The outcome of one example: scores, feedback, the output or the error.

    ``score`` is the scalar that decides acceptance, ``scores`` what the guide returned
    (a float or named objectives). ``output`` is the plain value the workflow returned;
    ``node`` its node -- the error node when the workflow raised -- kept only when the
    workflow ran in this process. ``error`` is the error's text, ``exception`` the
    exception itself (in this process only). ``cached`` marks a result taken from the
    evaluation cache, for which the workflow did not run.
    """

    index: int
    example: Example
    score: float
    scores: Score
    feedback: str
    output: Any = None
    node: Any = field(default=None, repr=False)
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)
    succeeded: bool = False
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "score": self.score,
            "scores": self.scores,
            "feedback": self.feedback,
            "error": self.error,
            "succeeded": self.succeeded,
            "cached": self.cached,
        }


@dataclass
class Evaluation:
    """Per-example results in dataset order, their mean score, and the spend.

    ``spend`` is what the ledgers given to ``evaluate`` (the pipeline's clients and the
    judge's) counted while it ran; ``cache_hits`` the examples answered by the
    evaluation cache without running the workflow.
    """

    results: list[ExampleResult]
    spend: Spend = field(default_factory=Spend)
    cache_hits: int = 0

    @property
    def score(self) -> float:
        """The mean scalar score (0 for an empty evaluation)."""
        return _mean([r.score for r in self.results])

    @property
    def scores(self) -> dict[str, float]:
        """The mean of each named objective, for vector scores (else empty)."""
        named: dict[str, list[float]] = {}
        for r in self.results:
            if isinstance(r.scores, Mapping):
                for k, v in r.scores.items():
                    named.setdefault(k, []).append(float(v))
        return {k: _mean(v) for k, v in named.items()}

    @property
    def per_example(self) -> list[float]:
        return [r.score for r in self.results]

    @property
    def errors(self) -> list[ExampleResult]:
        """The results of examples whose workflow raised."""
        return [r for r in self.results if r.error is not None]

    @property
    def all_succeeded(self) -> bool:
        return all(r.succeeded for r in self.results)

    @property
    def calls(self) -> int:
        return self.spend.calls

    @property
    def prompt_tokens(self) -> int:
        return self.spend.prompt_tokens

    @property
    def completion_tokens(self) -> int:
        return self.spend.completion_tokens

    @property
    def cost_usd(self) -> float:
        return self.spend.cost_usd

    def __len__(self) -> int:
        return len(self.results)

    def summary(self) -> str:
        ok = sum(r.succeeded for r in self.results)
        return (
            f"score {self.score:.3f} ({ok}/{len(self.results)} succeeded, {len(self.errors)} errors, "
            f"{self.cache_hits} cached); {self.spend.summary()}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "scores": self.scores,
            "results": [r.to_json() for r in self.results],
            "spend": self.spend.to_json(),
            "cache_hits": self.cache_hits,
        }

    def __repr__(self) -> str:
        return f"<Evaluation {self.summary()}>"


def _mean(values: list[float]) -> float:
    if not values:
        return 0.0
    total = math.fsum(values) / len(values)
    return total


__all__ = ["Evaluation", "ExampleResult", "Spend"]
