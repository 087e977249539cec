"""Errors raised by the LLM client, all under one base class ``LLMError``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracegrad._text import truncate
from tracegrad.errors import TracegradError

if TYPE_CHECKING:
    from tracegrad.llm.request import Completion


class LLMError(TracegradError):
    """Base class of every error the LLM client raises on purpose."""


class LLMConfigError(LLMError, ValueError):
    """The client is not configured well enough to make a call (e.g. no model)."""


class LLMCallError(LLMError):
    """A model call failed, after retries when the failure was worth retrying.

    ``kind`` names the failure (``rate_limit``, ``timeout``, ``connection``, ``server``,
    ``auth``, ``bad_request``, ``not_found``, ``context_window``, ``replay_miss``,
    ``other``); ``retryable`` says whether trying again later could succeed; the
    original exception is chained as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "other",
        retryable: bool = False,
        status_code: int | None = None,
        attempts: int = 1,
    ) -> None:
        self.kind = kind
        self.retryable = retryable
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(message)


class BudgetExceeded(LLMError):
    """A call was refused because it would go past a budget (calls, tokens or dollars).

    Raised before the call is made, so nothing is spent by the refused call; ``budget``
    names the budget (``max_calls``, ``max_tokens`` or ``max_cost_usd``), ``limit`` is
    its value and ``spent`` the amount already used.
    """

    def __init__(self, budget: str, limit: float, spent: float, *, calls: int) -> None:
        self.budget = budget
        self.limit = limit
        self.spent = spent
        self.calls = calls
        money = budget == "max_cost_usd"
        detail = f"${spent:.4f} spent of ${limit:.4f}" if money else f"{spent:g} used of {limit:g}"
        super().__init__(
            f"LLM budget {budget}={limit:g} reached ({detail}, {calls} calls made); "
            "the call was not made. Raise the budget or start a new run to continue."
        )


class StructuredOutputError(LLMError):
    """The model's reply could not be turned into the requested schema.

    Carries the last ``raw_text`` the model returned, the ``reason`` it was rejected
    (the parse or validation error, or the caller's check), how many ``attempts``
    (replies) were made, and the last ``completion``, whose ``usage`` covers every turn
    (those tokens and dollars were spent all the same).
    """

    def __init__(
        self, reason: str, *, raw_text: str, attempts: int, schema_name: str, completion: Completion | None = None
    ) -> None:
        self.reason = reason
        self.completion = completion
        self.raw_text = raw_text
        self.attempts = attempts
        self.schema_name = schema_name
        preview = truncate(raw_text, 300)
        super().__init__(
            f"The model's reply did not match {schema_name} after {attempts} attempt(s): "
            f"{reason}\nLast reply: {preview!r}"
        )
