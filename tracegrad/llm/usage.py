"""Token and cost accounting, and the budgets that stop a run before it overspends.

One :class:`Usage` ledger can be shared by several clients (e.g. the optimizer's model
and the pipeline's model) so that a budget covers a whole run. The ledger is
thread-safe; every update happens under one lock. ``track_usage()`` counts what the
calls made in one context spent, ledger by ledger (e.g. one example of a batch), and
``Usage.add`` books spend made elsewhere, such as on another process's copy of a ledger.

What a server reports is not trusted blindly (:func:`call_spend`): a token count that
cannot be (negative, not a whole number, more than ``MAX_CALL_TOKENS``) is replaced by
the estimate from the length of the text (``tracegrad.llm.tokens``), and a price that
cannot be (negative, not finite, more than ``MAX_CALL_COST_USD``) by the transport's own
price for the counted tokens, else it is unknown. So a lying or broken server can
neither lower the totals nor switch a budget off; it is warned of at each such call.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from tracegrad._text import truncate
from tracegrad.llm.errors import BudgetExceeded, LLMConfigError
from tracegrad.llm.tokens import tokens_for_chars

logger = logging.getLogger("tracegrad.llm")


@dataclass(frozen=True)
class Budget:
    """Limits for a run; None means no limit.

    ``max_calls`` counts calls made to a provider (cache hits are free). ``max_tokens``
    counts prompt plus completion tokens. ``max_cost_usd`` counts dollars of calls whose
    price is known. A call is refused once a limit is reached; since the size of a reply
    is only known afterwards, the last call can go past a token or dollar limit by at
    most its own size.

    Across processes (``RayExecutor``) a budget is checked per batch, not per call: each
    worker gets a copy of the ledger with the totals as of the batch and refuses a call
    once those totals plus its own spend reach a limit, so within one batch several
    workers may each spend up to what was left. Their spend is added to the driver's
    ledger as their replies come back, which then refuses the next call (and the next
    batch) once a limit is reached.
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
    #: Of ``prompt_tokens``, those the provider reused from an earlier request's prefix.
    cached_prompt_tokens: int = 0

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


_NOTHING = UsageSnapshot()

#: More tokens than any model reads or writes in one call: a count above it is impossible.
MAX_CALL_TOKENS = 100_000_000
#: More dollars than any one call costs: a price above it is impossible.
MAX_CALL_COST_USD = 10_000.0


def _count(value: Any) -> int | None:
    """A reported token count as an int, or None when no call can have it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_CALL_TOKENS else None


def _dollars(value: Any) -> float | None:
    """A reported price as a float, or None when no call can have it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and 0 <= value <= MAX_CALL_COST_USD else None


def _shown(value: Any) -> str:
    """A short repr of a reported value (an int too long to print is described)."""
    try:
        return truncate(repr(value), 40)
    except ValueError:
        return f"<an integer of {value.bit_length()} bits>"


def call_spend(
    prompt_tokens: Any,
    completion_tokens: Any,
    cost_usd: Any,
    *,
    cached_prompt_tokens: Any = 0,
    prompt_chars: int,
    reply_chars: int,
    price: Callable[[int, int], float | None] | None = None,
) -> UsageSnapshot:
    """What one answered call spent, from what its server reported, checked.

    An impossible token count is replaced by the estimate for ``prompt_chars`` or
    ``reply_chars`` characters; an impossible price (``cost_usd`` None is unknown, not
    impossible) by ``price(prompt_tokens, completion_tokens)`` when given, else unknown.
    Each replacement is warned of, naming what was reported. ``cached_prompt_tokens``
    is kept only where it can be (a whole number from 0 to the prompt tokens).
    """
    prompt, completion = _count(prompt_tokens), _count(completion_tokens)
    cost = None if cost_usd is None else _dollars(cost_usd)
    impossible = [
        f"{name}={_shown(value)}"
        for name, value, checked in (
            ("prompt_tokens", prompt_tokens, prompt),
            ("completion_tokens", completion_tokens, completion),
            ("cost_usd", cost_usd, cost if cost_usd is not None else 0.0),
        )
        if checked is None
    ]
    if prompt is None:
        prompt = tokens_for_chars(prompt_chars)
    if completion is None:
        completion = tokens_for_chars(reply_chars)
    if cost_usd is not None and cost is None and price is not None:
        cost = _dollars(price(prompt, completion))
    if impossible:
        logger.warning(
            "the server reported impossible usage (%s); counted %d prompt + %d completion tokens and %s instead",
            ", ".join(impossible),
            prompt,
            completion,
            "an unknown price" if cost is None else f"${cost:.6f}",
        )
    cached = _count(cached_prompt_tokens)
    return UsageSnapshot(
        calls=1,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_prompt_tokens=cached if cached is not None and cached <= prompt else 0,
        cost_usd=cost or 0.0,
        calls_without_cost=int(cost is None),
    )


_TRACKERS: contextvars.ContextVar[tuple[UsageTracker, ...]] = contextvars.ContextVar("tracegrad_usage", default=())


class Usage:
    """A thread-safe ledger of calls, tokens and dollars, with an optional budget.

    A pickled ledger (e.g. sent to a worker) keeps its totals and budget; the copy is
    a ledger of its own, whose spend the sender books with :meth:`add`.
    """

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self._lock = threading.Lock()
        self._totals = UsageSnapshot()
        self._in_flight = 0
        self._warned_unpriced = False
        self._untracked = _NOTHING

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            state = dict(self.__dict__)
        del state["_lock"]
        state["_untracked"] = _NOTHING  # a copy starts with nothing left to report
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

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
        with self._lock:
            self._in_flight -= 1
            warn = self._spend(spent if spent is not None else UsageSnapshot(failed_calls=1))
        if warn:
            logger.warning("a call's price is unknown; max_cost_usd cannot count it (tokens still count)")

    def record_cache_hit(self) -> None:
        """Count a call answered from the cache (free: it uses no budget)."""
        with self._lock:
            self._spend(UsageSnapshot(cache_hits=1))

    def add(self, spent: UsageSnapshot) -> None:
        """Add spend made elsewhere, e.g. by the calls of a worker's copy of this ledger.

        It counts towards the budget: once a limit is reached, the next call is refused.
        """
        with self._lock:
            warn = self._spend(spent)
        if warn:
            logger.warning("a call's price is unknown; max_cost_usd cannot count it (tokens still count)")

    def take_untracked(self) -> UsageSnapshot:
        """What was spent outside every ``track_usage()`` block since the last take.

        Together with the blocks' reports it accounts for every call exactly, also for
        calls made on threads started without the block's context.
        """
        with self._lock:
            taken, self._untracked = self._untracked, _NOTHING
            return taken

    def _spend(self, spent: UsageSnapshot) -> bool:
        """Book ``spent`` (the lock held); True when an unknown price must be warned of."""
        self._totals = self._totals + spent
        trackers = _TRACKERS.get()
        for tracker in trackers:
            tracker._add(self, spent)
        if not trackers:
            self._untracked = self._untracked + spent
        if spent.calls_without_cost and self.budget.max_cost_usd is not None and not self._warned_unpriced:
            self._warned_unpriced = True
            return True
        return False


class UsageTracker:
    """What the calls made in a ``track_usage()`` block spent, ledger by ledger."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[Usage, UsageSnapshot] = {}

    def spent(self) -> dict[Usage, UsageSnapshot]:
        """The spend so far of each ledger used in the block."""
        with self._lock:
            return dict(self._spent)

    def total(self) -> UsageSnapshot:
        """The spend so far of all ledgers together."""
        return sum(self.spent().values(), _NOTHING)

    def _add(self, ledger: Usage, spent: UsageSnapshot) -> None:
        with self._lock:
            self._spent[ledger] = self._spent.get(ledger, _NOTHING) + spent


@contextlib.contextmanager
def track_usage() -> Iterator[UsageTracker]:
    """Count what the calls made in this block spent, per ledger.

    Unlike the difference of two snapshots, this separates blocks that run at once on
    one ledger (threads, asyncio tasks). It counts the calls made in the block's
    context: its own thread and the threads and tasks that run in a copy of it (asyncio
    tasks, ``LocalExecutor`` items). Blocks nest; each one counts.
    """
    tracker = UsageTracker()
    token = _TRACKERS.set((*_TRACKERS.get(), tracker))
    try:
        yield tracker
    finally:
        _TRACKERS.reset(token)


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
