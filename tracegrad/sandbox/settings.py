"""The sandbox's settings: its limits, and where proposed code runs.

A ``Sandbox`` holds the limits. The current one lives in a context variable, so a
``with sandboxing(...)`` block applies to the calls made inside it (threads of a
``LocalExecutor`` and asyncio tasks included, as they copy the context) and to
nothing else. ``@bundle(sandbox=...)`` overrides it for one function.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from tracegrad.errors import TracegradError

_MIB = 1 << 20


@dataclass(frozen=True)
class Sandbox:
    """Limits for a call of model-written code, run in a process of its own.

    Args:
        enabled: run proposed code in the sandbox (``False``: in this process, trusted).
        timeout: wall-clock seconds a call may take before it is stopped.
        memory: bytes of address space the call may add to what the caller had.
        cpu: CPU seconds the call may use (default: ``timeout``, rounded up).
        processes: processes and threads the call may have at once (on Linux, counted
            for the sandbox's user: a fork bomb stops there).
        file_size: largest file, in bytes, the call may write.
        network: allow network access (off: the call gets a network of its own with
            no interface up, where the platform allows it).
    """

    enabled: bool = True
    timeout: float = 30.0
    memory: int = 2048 * _MIB
    cpu: float | None = None
    processes: int = 64
    file_size: int = 256 * _MIB
    network: bool = False

    def __post_init__(self) -> None:
        for name in ("timeout", "cpu", "memory", "processes", "file_size"):
            value = getattr(self, name)
            if name == "cpu" and value is None:
                continue
            whole = name in ("memory", "processes", "file_size")
            number = not isinstance(value, bool) and isinstance(value, int if whole else (int, float))
            if not (number and 0 < value < math.inf):
                kind = "whole number" if whole else "number of seconds"
                raise TracegradError(f"Sandbox({name}=...) must be a positive {kind}, got {value!r}")

    @property
    def cpu_seconds(self) -> int:
        """The CPU limit in whole seconds, as the operating system counts it."""
        return max(1, math.ceil(self.cpu if self.cpu is not None else self.timeout))


_DEFAULT = Sandbox()
_CURRENT: ContextVar[Sandbox | None] = ContextVar("tracegrad_sandbox", default=None)


def current_sandbox() -> Sandbox:
    """The settings in force in this context."""
    return _CURRENT.get() or _DEFAULT


@contextmanager
def sandboxing(enabled: bool | Sandbox = True, **limits: Any) -> Iterator[Sandbox]:
    """Run proposed code with these settings inside the block (restored on exit).

    ``sandboxing(False)`` runs it in this process (trusted code);
    ``sandboxing(timeout=2)`` changes one limit and keeps the others;
    ``sandboxing(Sandbox(...))`` sets them all. Yields the settings in force.
    """
    if isinstance(enabled, Sandbox):
        settings = replace(enabled, **limits)
    elif isinstance(enabled, bool):
        settings = replace(current_sandbox(), enabled=enabled, **limits)
    else:
        raise TracegradError(f"sandboxing() takes True, False or a Sandbox, got {enabled!r}")
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)


def check_policy(policy: object) -> None:
    """Raise for a ``bundle(sandbox=...)`` value that is not None, a bool or a ``Sandbox``."""
    if policy is not None and not isinstance(policy, (bool, Sandbox)):
        raise TracegradError(f"bundle(sandbox=...) takes None, True, False or a tracegrad.Sandbox, got {policy!r}")


def settings_for(policy: bool | Sandbox | None) -> Sandbox | None:
    """The settings a proposed version of a function runs under, or None for in-process.

    ``policy`` is the function's ``bundle(sandbox=...)``: None follows the context,
    False is in-process, True is sandboxed with the context's limits, a ``Sandbox``
    gives its own.
    """
    if policy is False:
        return None
    if isinstance(policy, Sandbox):
        return policy if policy.enabled else None
    settings = current_sandbox()
    if policy is True:
        return settings if settings.enabled else replace(settings, enabled=True)
    return settings if settings.enabled else None
