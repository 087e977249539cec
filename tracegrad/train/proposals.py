"""Several proposals of one optimizer from one state, made concurrently.

``propose_all(optimizer, n)`` returns ``[propose(sample=0), ..., propose(sample=n-1)]``
in sample order (``first=k`` starts at sample ``k``: fresh draws from a state that was
already proposed from). Proposing changes nothing, so the proposals can be made at the same
time: through ``apropose`` on one event loop when the optimizer has its own async
version (an LLM optimizer), else on threads, each in a copy of the caller's context.
None is committed here.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

from tracegrad.train.executors import LocalExecutor


def propose_all(optimizer: Any, samples: int, first: int = 0) -> list[Any]:
    """``samples`` proposals from the optimizer's current state (see the module docstring)."""
    if samples < 1:
        raise ValueError("samples must be at least 1")
    indices = list(range(first, first + samples))
    if samples == 1:
        return [optimizer.propose(sample=first)]
    if has_async_propose(optimizer):

        async def gather() -> list[Any]:
            return list(await asyncio.gather(*(optimizer.apropose(sample=i) for i in indices)))

        return run_coroutine(gather)
    with LocalExecutor(samples) as threads:
        outcomes = threads.map(lambda i: optimizer.propose(sample=i), indices)
    return [o.unwrap() for o in outcomes]


def has_async_propose(optimizer: Any) -> bool:
    """Whether the optimizer's class overrides the base ``apropose`` (which only calls ``propose``)."""
    from tracegrad.optimizers.base import Optimizer

    method = getattr(type(optimizer), "apropose", None)
    return method is not None and method is not Optimizer.apropose


def run_coroutine(factory: Any) -> Any:
    """Run ``factory()`` to completion: here, or on a new thread when an event loop is
    already running in this one (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:
            box["error"] = exc

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name="tracegrad-propose")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = ["has_async_propose", "propose_all", "run_coroutine"]
