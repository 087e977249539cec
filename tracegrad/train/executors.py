"""Executors: run one function over many items, concurrently, results in order.

The interface every executor provides (``evaluate`` and the trainer accept any object
that has it; subclassing ``Executor`` is optional):

``map(fn, items, *, on_result=None) -> list[Outcome]``
    Call ``fn(item)`` for every item and return one ``Outcome`` per item, *in the
    order of the items*, whatever order they finished in. An exception raised by
    ``fn`` is captured in its item's outcome (``outcome.error``), never raised by
    ``map``, so one failing item cannot stop the others. ``on_result(index,
    outcome)``, when given, is called once per item as it finishes (in any order,
    from the thread that called ``map``), e.g. to move a progress bar. Exceptions that
    are not ``Exception`` (``KeyboardInterrupt``) propagate.
``close()``
    Release workers; executors are context managers that close on exit.
``in_process``
    True when ``fn`` runs in this process and its results are the very objects it
    returned (default True when the attribute is missing).
``returns_traces``
    Optional, for executors that run elsewhere: True when the nodes of the results
    come back connected to this process's parameters (so feedback propagated from
    them reaches the optimizer's parameters). The trainer records the traces it
    propagates feedback through only on an executor that is ``in_process`` or
    ``returns_traces``; on others it uses local threads for those, and the executor
    for the evaluations that need only scores.

The results of ``map`` must not depend on the executor: same values, same order.
"""

from __future__ import annotations

import contextvars
import threading
import traceback as _traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
OnResult = Callable[[int, "Outcome[Any]"], None]


@dataclass
class Outcome(Generic[R]):
    """What one call returned (``value``) or raised (``error``, with its traceback text)."""

    value: R | None = None
    error: BaseException | None = None
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> R:
        """The value, or the captured exception raised again."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    @classmethod
    def capture(cls, fn: Callable[[T], R], item: T) -> Outcome[R]:
        """Call ``fn(item)``; an ``Exception`` becomes the outcome's error."""
        try:
            return cls(value=fn(item))
        except Exception as exc:
            return cls(error=exc, traceback="".join(_traceback.format_exception(exc)))


class Executor(ABC):
    """Base class of executors (optional: any object with ``map``/``close`` will do)."""

    in_process: bool = True

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T], *, on_result: OnResult | None = None) -> list[Outcome[R]]:
        """One ``Outcome`` per item, in order (see the module docstring)."""

    def close(self) -> None:  # noqa: B027  (optional: executors without workers keep nothing)
        """Release the executor's workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_worker = threading.local()


class LocalExecutor(Executor):
    """Threads of this process, at most ``concurrency`` at a time.

    Every call runs in a copy of the caller's ``contextvars`` context taken when ``map``
    is called, so tracing state (``no_trace``, open recordings) carries into the
    threads and each call traces on its own. With ``concurrency=1`` calls run one by
    one in the calling thread. A ``map`` called from inside one of this executor's own
    calls runs inline, so nested use cannot deadlock the pool.
    """

    in_process = True

    def __init__(self, concurrency: int = 16) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalExecutor(concurrency={self.concurrency})"

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, on_result: OnResult | None = None) -> list[Outcome[R]]:
        items = list(items)
        if self.concurrency == 1 or len(items) <= 1 or getattr(_worker, "executor", None) is self:
            return self._inline(fn, items, on_result)
        pool = self._threads()
        futures: dict[Future[Outcome[R]], int] = {}
        for index, item in enumerate(items):
            context = contextvars.copy_context()
            futures[pool.submit(context.run, self._run, fn, item)] = index
        results: list[Outcome[R] | None] = [None] * len(items)
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.__getitem__):
                    index = futures[future]
                    results[index] = future.result()  # raises only what is not an Exception
                    if on_result is not None:
                        on_result(index, results[index])  # type: ignore[arg-type]
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        return results  # type: ignore[return-value]

    def _inline(self, fn: Callable[[T], R], items: list[T], on_result: OnResult | None) -> list[Outcome[R]]:
        results = []
        for index, item in enumerate(items):
            outcome = contextvars.copy_context().run(Outcome.capture, fn, item)
            results.append(outcome)
            if on_result is not None:
                on_result(index, outcome)
        return results

    def _run(self, fn: Callable[[T], R], item: T) -> Outcome[R]:
        _worker.executor = self
        try:
            return Outcome.capture(fn, item)
        finally:
            _worker.executor = None

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="tracegrad-eval")
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def keeps_traces(executor: Any) -> bool:
    """Whether results from ``executor`` keep nodes connected to this process's parameters."""
    return bool(getattr(executor, "in_process", True) or getattr(executor, "returns_traces", False))


def as_executor(executor: Any, concurrency: int) -> tuple[Any, bool]:
    """``(executor, owned)``: the given executor, or a new ``LocalExecutor`` that the
    caller owns (and closes)."""
    if executor is None:
        return LocalExecutor(concurrency), True
    if not callable(getattr(executor, "map", None)):
        raise TypeError(f"an executor has a map(fn, items) method; {executor!r} has none")
    return executor, False


__all__ = ["Executor", "LocalExecutor", "OnResult", "Outcome", "as_executor", "keeps_traces"]
