"""Token and cost accounting, and the budgets that stop a run before it overspends.

One :class:`Usage` ledger can be shared by several clients (e.g. the optimizer's model
and the pipeline's model) so that a budget covers a whole run. The ledger is
thread-safe; every update happens under one lock.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields, replace

from tracegrad.llm.errors import BudgetExceeded, LLMConfigError

logger = logging.getLogger("tracegrad.llm")


@dataclass(frozen=True)
class Budget:
    """Limits for a run; None means no limit.

    ``max_calls`` counts calls made to a provider (cache hits are free). ``max_tokens``
    counts prompt plus completion tokens. ``max_cost_usd`` counts dollars of calls whose
    price is known. A call is refused once a limit is reached; since the size of a reply
    is only known afterwards, the last call can go past a token or dollar limit by at
    most its own size.
    """

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value < 0:
                raise LLMConfigError(f"Budget {f.name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class UsageSnapshot:
    """Calls, tokens and dollars: the totals of a ledger at one moment, or what one call
    (its repair turns included) spent. Add two to join them; subtract two snapshots of a
    ledger to get the spend in between.

    Tokens and dollars count calls answered by a provider; a cache hit spends nothing.
    ``cost_usd`` counts the calls whose price is known, ``calls_without_cost`` the others.
    """

    calls: int = 0
    failed_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls_without_cost: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def known_cost_usd(self) -> float | None:
        """The dollars spent, or None when some call's price is unknown (not free)."""
        return None if self.calls_without_cost else self.cost_usd

    def __add__(self, other: UsageSnapshot) -> UsageSnapshot:
        return UsageSnapshot(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: UsageSnapshot) -> UsageSnapshot:
        return UsageSnapshot(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def summary(self) -> str:
        """One readable line, e.g. for a step report."""
        cost = f"${self.cost_usd:.4f}"
        if self.calls_without_cost:
            cost += f" (+{self.calls_without_cost} calls of unknown price)"
        return (
            f"{self.calls} calls, {self.cache_hits} cache hits, "
            f"{self.prompt_tokens}+{self.completion_tokens} tokens, {cost}"
        )


class Usage:
    """A thread-safe ledger of calls, tokens and dollars, with an optional budget."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self._lock = threading.Lock()
        self._totals = UsageSnapshot()
        self._in_flight = 0
        self._warned_unpriced = False

    # -- reading ---------------------------------------------------------------
    def snapshot(self) -> UsageSnapshot:
        """The current totals (a consistent copy)."""
        with self._lock:
            return self._totals

    @property
    def calls(self) -> int:
        """Calls answered by a provider (cache hits not included)."""
        return self.snapshot().calls

    @property
    def cache_hits(self) -> int:
        """Calls answered from the cache."""
        return self.snapshot().cache_hits

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of provider calls."""
        return self.snapshot().prompt_tokens

    @property
    def completion_tokens(self) -> int:
        """Completion tokens of provider calls."""
        return self.snapshot().completion_tokens

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens of provider calls."""
        return self.snapshot().total_tokens

    @property
    def cost_usd(self) -> float:
        """Dollars spent on calls whose price is known."""
        return self.snapshot().cost_usd

    def __repr__(self) -> str:
        return f"Usage({self.snapshot().summary()})"

    # -- updating (used by the client) ----------------------------------------
    def begin_call(self) -> None:
        """Reserve one call, or raise :class:`BudgetExceeded` if a budget is used up."""
        with self._lock:
            t, b = self._totals, self.budget
            started = t.calls + self._in_flight
            if b.max_calls is not None and started >= b.max_calls:
                raise BudgetExceeded("max_calls", b.max_calls, started, calls=t.calls)
            if b.max_tokens is not None and t.total_tokens >= b.max_tokens:
                raise BudgetExceeded("max_tokens", b.max_tokens, t.total_tokens, calls=t.calls)
            if b.max_cost_usd is not None and t.cost_usd >= b.max_cost_usd:
                raise BudgetExceeded("max_cost_usd", b.max_cost_usd, t.cost_usd, calls=t.calls)
            self._in_flight += 1

    def end_call(self, spent: UsageSnapshot | None) -> None:
        """Release a reservation made by :meth:`begin_call` and add what the call spent
        (``None``: the call failed)."""
        warn = False
        with self._lock:
            self._in_flight -= 1
            if spent is None:
                self._totals = replace(self._totals, failed_calls=self._totals.failed_calls + 1)
                return
            self._totals = self._totals + spent
            if spent.calls_without_cost and self.budget.max_cost_usd is not None:
                warn, self._warned_unpriced = not self._warned_unpriced, True
        if warn:
            logger.warning("a call's price is unknown; max_cost_usd cannot count it (tokens still count)")

    def record_cache_hit(self) -> None:
        """Count a call answered from the cache (free: it uses no budget)."""
        with self._lock:
            self._totals = replace(self._totals, cache_hits=self._totals.cache_hits + 1)


@dataclass(frozen=True)
class CostEstimate:
    """A projected cost: tokens counted with the model's tokenizer where known.

    ``cost_usd`` is None when the model's price is unknown; ``approximate`` is True when
    the prompt tokens had to be guessed from the text length.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    calls: int = 1
    approximate: bool = False

    def __str__(self) -> str:
        cost = "unknown price" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        approx = "~" if self.approximate else ""
        return (
            f"{self.model}: {self.calls} call(s) x ({approx}{self.prompt_tokens} prompt + "
            f"<= {self.completion_tokens} completion tokens) = {cost}"
        )
