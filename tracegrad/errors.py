"""The errors tracegrad raises, with one common base class."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracegrad.trace.node import ErrorNode


class TracegradError(Exception):
    """Base class of every error tracegrad raises on purpose."""


class InvalidValueError(TracegradError, ValueError):
    """A value does not satisfy a parameter's kind; the parameter keeps its old value."""

    def __init__(self, reason: str, *, name: str | None = None) -> None:
        self.reason = reason
        self.parameter_name = name
        super().__init__(f"{name}: {reason}" if name else reason)

    def __reduce__(self) -> tuple:  # pickles (for other processes) with its parameter's name
        return (_invalid_value, (self.reason, self.parameter_name))


class InvalidKindError(TracegradError, TypeError, ValueError):
    """A parameter kind defined with invalid arguments (``Number(1, 0)``, ``Choice("short")``).

    Both a ``TypeError`` and a ``ValueError``, as a bad argument to a Python callable
    would be either; the message is one sentence naming the kind and the argument.
    """


class ExecutionError(TracegradError):
    """An exception raised inside a traced function.

    The failure is recorded in the graph as an error node (``.node``), so it can be
    used as feedback: ``err.node.backward(str(err))`` reaches every parameter that
    the failed call depended on.
    """

    def __init__(self, node: ErrorNode) -> None:
        self.node = node
        self.exception: BaseException = node.exception
        super().__init__(f"{node.name}: {type(self.exception).__name__}: {self.exception}")

    def __reduce__(self) -> tuple:  # pickles with its error node (and so its graph)
        return (type(self), (self.node,))


def _invalid_value(reason: str, name: str | None) -> InvalidValueError:
    return InvalidValueError(reason, name=name)
