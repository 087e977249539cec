"""Which failures are worth retrying, and the retry loop (tenacity) for sync and async.

Failures are classified by exception class name and HTTP status, so the client needs
no import of litellm or openai to understand their errors: rate limits, timeouts,
connection errors and 5xx are retried with exponential backoff and jitter (honouring a
``Retry-After`` header); errors that cannot succeed on a second try (bad key, bad
request, unknown model, context window exceeded) are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from tracegrad.llm.errors import LLMCallError

logger = logging.getLogger("tracegrad.llm")
T = TypeVar("T")

# Class names used by litellm and openai, most specific first where they inherit.
_BY_NAME: dict[str, tuple[str, bool]] = {
    "ContextWindowExceededError": ("context_window", False),
    "ContentPolicyViolationError": ("bad_request", False),
    "AuthenticationError": ("auth", False),
    "PermissionDeniedError": ("auth", False),
    "PaymentRequiredError": ("auth", False),
    "NotFoundError": ("not_found", False),
    "BadRequestError": ("bad_request", False),
    "UnprocessableEntityError": ("bad_request", False),
    "UnsupportedParamsError": ("bad_request", False),
    "RateLimitError": ("rate_limit", True),
    "Timeout": ("timeout", True),
    "APITimeoutError": ("timeout", True),
    "APIConnectionError": ("connection", True),
    "ServiceUnavailableError": ("server", True),
    "InternalServerError": ("server", True),
    "BadGatewayError": ("server", True),
}


#: Words of a message about the requested response format, and words of refusal.
_FORMAT_WORDS = (
    "response_format",
    "response format",
    "json_schema",
    "json schema",
    "json_object",
    "json mode",
    "structured output",
)
_REFUSAL_WORDS = ("support", "should be", "must be", "invalid", "not allowed", "unknown", "unrecognized")


def refuses_response_format(exc: BaseException) -> bool:
    """Whether a provider error says it does not accept the requested response format.

    The one rule for it: the message names the response format and refuses it. Such an
    error cannot succeed on a retry, even when a server sends it as a 5xx (some
    OpenAI-compatible servers do), and a structured call falls back to a weaker mode.
    """
    text = str(exc).lower()
    return any(w in text for w in _FORMAT_WORDS) and any(w in text for w in _REFUSAL_WORDS)


def classify(exc: BaseException) -> tuple[str, bool, int | None]:
    """``(kind, retryable, status_code)`` of an exception raised by a transport."""
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    if isinstance(exc, LLMCallError):
        return exc.kind, exc.retryable, exc.status_code
    if refuses_response_format(exc):
        return "bad_request", False, status
    for cls in type(exc).__mro__:
        if cls.__name__ in _BY_NAME:
            kind, retryable = _BY_NAME[cls.__name__]
            return kind, retryable, status
    if status is not None:
        if status == 429:
            return "rate_limit", True, status
        if status in (408, 409) or status >= 500:
            return ("timeout" if status == 408 else "server"), True, status
        if status in (401, 403):
            return "auth", False, status
        if status == 404:
            return "not_found", False, status
        if 400 <= status < 500:
            return "bad_request", False, status
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout", True, status
    if isinstance(exc, ConnectionError):
        return "connection", True, status
    return "other", False, status


def to_call_error(exc: BaseException, attempts: int) -> LLMCallError:
    """Wrap a transport exception into :class:`LLMCallError` (chain it as the cause)."""
    kind, retryable, status = classify(exc)
    if isinstance(exc, LLMCallError):
        exc.attempts = attempts
        return exc
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    err = LLMCallError(
        f"LLM call failed{tries} ({kind}): {type(exc).__name__}: {exc}",
        kind=kind,
        retryable=retryable,
        status_code=status,
        attempts=attempts,
    )
    err.__cause__ = exc
    return err


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` (or ``retry-after-ms``) response header."""
    sources = (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    )
    for headers in sources:
        if not headers:
            continue
        try:
            ms = headers.get("retry-after-ms")
            if ms is not None:
                return max(0.0, float(ms) / 1000.0)
            value = headers.get("retry-after")
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError, AttributeError):
            continue
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How failed calls are retried.

    The n-th retry waits ``min(max_wait, initial_wait * 2**(n-1)) + uniform(0, jitter)``
    seconds, or the server's ``Retry-After`` when that is longer (capped by
    ``max_wait``). ``sleep``/``asleep`` are injectable so tests do not wait.
    """

    max_retries: int = 4
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    asleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def wait_for(self, retry_number: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based)."""
        backoff = min(self.max_wait, self.initial_wait * 2 ** (retry_number - 1))
        backoff += random.uniform(0.0, self.jitter) if self.jitter > 0 else 0.0
        hinted = _retry_after(exc)
        if hinted is not None:
            backoff = max(backoff, min(hinted, self.max_wait))
        return backoff

    def _tenacity_kwargs(self) -> dict[str, Any]:
        import tenacity

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_for(state.attempt_number, exc)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            logger.warning(
                "LLM call attempt %d failed (%s: %s); retrying in %.1fs",
                state.attempt_number,
                type(exc).__name__,
                exc,
                delay,
            )

        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "wait": wait,
            "retry": tenacity.retry_if_exception(lambda e: classify(e)[1]),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def call(self, fn: Callable[[], T]) -> tuple[T, int]:
        """Run ``fn`` with retries; return its result and the number of attempts.

        Raises :class:`LLMCallError` when it fails for good.
        """
        import tenacity

        retrying = tenacity.Retrying(sleep=self.sleep, **self._tenacity_kwargs())
        try:
            return retrying(fn), retrying.statistics.get("attempt_number", 1)
        except Exception as exc:
            _raise_call_error(exc, retrying.statistics.get("attempt_number", 1))

    async def acall(self, fn: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        """Async version of :meth:`call`."""
        import tenacity

        retrying = tenacity.AsyncRetrying(sleep=self.asleep, **self._tenacity_kwargs())

        async def attempt() -> T:
            return await fn()

        try:
            result = await retrying(attempt)
            return result, retrying.statistics.get("attempt_number", 1)
        except Exception as exc:
            _raise_call_error(exc, retrying.statistics.get("attempt_number", 1))


def _raise_call_error(exc: Exception, attempts: int) -> NoReturn:
    err = to_call_error(exc, attempts)
    if err is exc:
        raise err
    raise err from exc
