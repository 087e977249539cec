"""Recording calls: ``apply`` for plain functions, and the recording functions.

``record``, ``record_error`` and ``call_traced`` are defined with the node types in
``tracegrad.trace.node`` (the traced operators of ``Node`` call them); ``resolve`` and
``unique_nodes`` walk arguments by the one container rule of
``tracegrad.trace.containers``. All of them are importable from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracegrad.trace.node import Node, Operator, call_traced, record, record_error, resolve, unique_nodes


def apply(fn: Callable[..., Any], *args: Any, name: str | None = None, **kwargs: Any) -> Node:
    """Call a plain function on nodes (or values) and record the call as one operation."""
    op = Operator(name or getattr(fn, "__name__", "apply"), fn, (fn.__doc__ or "").strip())
    return call_traced(op, args, kwargs or None)


__all__ = ["apply", "call_traced", "record", "record_error", "resolve", "unique_nodes"]
