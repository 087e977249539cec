"""Recording calls: ``apply`` for plain functions, and the recording functions.

``record``, ``record_error`` and ``call_traced`` are defined with the node types in
``tracegrad.trace.node`` (the traced operators of ``Node`` call them); ``resolve``,
``unique_nodes``, ``call_on_values`` and ``acall_on_values`` walk arguments by the one
container rule of ``tracegrad.trace.containers`` (in ``tracegrad.trace.arguments``).
All of them are importable from here.

What a recorded function receives: the values of its node arguments. A plain list,
dict, set or dataclass (one holding no node) is passed as the same object, so changes
made to it in place are the caller's. One holding nodes is passed as a copy with the
values in their place; changes made to that copy in place are written back to the
original when the call returns or raises, items left alone staying the nodes they
were. ``call_traced`` (and so ``apply`` and ``node(...)``) does this; a caller that runs
functions itself, as ``@bundle`` does, uses ``call_on_values`` / ``acall_on_values``.

``assign`` is how the layers above change parameters: validated, all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tracegrad.errors import InvalidValueError
from tracegrad.trace.arguments import acall_on_values, call_on_values
from tracegrad.trace.node import Node, Operator, ParameterNode, call_traced, record, record_error, resolve, unique_nodes


def apply(fn: Callable[..., Any], *args: Any, name: str | None = None, **kwargs: Any) -> Node:
    """Call a plain function on nodes (or values) and record the call as one operation."""
    op = Operator(name or getattr(fn, "__name__", "apply"), fn, (fn.__doc__ or "").strip())
    return call_traced(op, args, kwargs or None)


def assign(updates: Mapping[ParameterNode, Any]) -> list[tuple[ParameterNode, Any, Any]]:
    """Validate every new value with its parameter's kind, then assign them all.

    All or nothing: on an invalid value nothing is assigned and ``InvalidValueError``
    names the parameter. Returns ``(parameter, old value, new value)`` triples with the
    validated new values.
    """
    staged = []
    for param, value in updates.items():
        try:
            staged.append((param, param._kind.validate(value)))
        except InvalidValueError as exc:
            raise InvalidValueError(exc.reason, name=param.name) from None
    done = []
    for param, value in staged:
        done.append((param, param._data, value))
        param._data = value
    return done


__all__ = [
    "acall_on_values",
    "apply",
    "assign",
    "call_on_values",
    "call_traced",
    "record",
    "record_error",
    "resolve",
    "unique_nodes",
]
