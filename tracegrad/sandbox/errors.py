"""The error a sandboxed call ends with when it does not return or raise normally."""

from __future__ import annotations

from tracegrad.errors import TracegradError

#: What ``SandboxError.reason`` can be.
REASONS = (
    "timeout",  # the wall-clock limit passed
    "cpu",  # the CPU-time limit passed
    "memory",  # the process was killed for memory
    "exit",  # the code ended its process (os._exit, sys.exit)
    "interrupt",  # the code raised KeyboardInterrupt (or another BaseException)
    "raised",  # the code raised an exception whose class exists only in its own process
    "crash",  # the process died of a signal (a segmentation fault ...)
    "transfer",  # the result cannot cross the process boundary
    "start",  # no process could be started for the call
    "unsupported",  # this platform cannot run a sandbox
)


class SandboxError(TracegradError):
    """A sandboxed call was stopped or its process ended without a result.

    Raised inside the bundled function, so it becomes an error node like any other
    exception there: its message is what the optimizer reads. ``reason`` is one of
    ``tracegrad.sandbox.errors.REASONS``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple:  # pickles with its reason
        return (_sandbox_error, (str(self), self.reason))


def _sandbox_error(message: str, reason: str) -> SandboxError:
    return SandboxError(message, reason=reason)
