"""The nodes inside a call's arguments, their values, and calls on those values.

``unique_nodes`` and ``iter_nodes`` find the nodes in arguments (a call's parents);
``resolve`` replaces them by their values; both by the one container rule of
``tracegrad.trace.containers``. ``call_on_values`` runs a function on the values of
its arguments:

* a container that holds no node reaches the function as the same object, so changes
  made to it in place (an agent appending to its memory list, a step updating an
  environment dict) are the caller's;
* a container that holds nodes must be rebuilt with values in their place; when the
  call returns or raises, the changes the function made in place to such a copy are
  written back to the original (``containers.write_back``): an item the function left
  alone stays the node it was, anything else is stored as the function left it. So
  the caller's list or dict changes exactly as if the function had been given it. A
  reference to the copy that the function keeps (``self.memory = memory``) is a
  reference to the copy: it is not linked to the original afterwards.

Arguments nested deeper than the walks can recurse (several hundred levels) raise a
``TracegradError`` saying so, never a ``RecursionError`` from inside tracegrad: a
``RecursionError`` raised by the called function itself is the function's own.

This module is below the node types: it knows nodes by their base class
``NodeOperators`` and their values by the ``_data`` every node has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tracegrad.errors import TracegradError
from tracegrad.trace.containers import Copy, find, replace, write_back
from tracegrad.trace.operators import NodeOperators

if TYPE_CHECKING:
    from tracegrad.trace.node import Node


@contextmanager
def _walking() -> Iterator[None]:
    """Turn running out of stack while walking arguments into one clear error."""
    try:
        yield
    except RecursionError:
        raise TracegradError(
            "the arguments are nested too deeply for tracegrad to look into (hundreds of levels of "
            "lists, tuples, dicts or dataclasses); pass such a structure inside an object it does not look into"
        ) from None


def iter_nodes(obj: Any) -> Iterator[Node]:
    """Every node inside ``obj``, each once (the rule is in ``tracegrad.trace.containers``)."""
    with _walking():
        return iter(find(obj, NodeOperators))  # type: ignore[arg-type]


def unique_nodes(obj: Any) -> tuple[Node, ...]:
    """The distinct nodes inside ``obj`` in order of first appearance."""
    with _walking():
        return tuple(find(obj, NodeOperators))  # type: ignore[arg-type]


def resolve(obj: Any, lookup: Callable[[Node], Any] | None = None) -> Any:
    """``obj`` with every node inside replaced by its value (or by ``lookup(node)``);
    a container holding no node is returned as the same object."""
    with _walking():
        return replace(obj, NodeOperators, _value if lookup is None else lookup)


def _value(node: Any) -> Any:
    return node._data


def call_on_values(fn: Callable[..., Any], args: tuple, kwargs: dict | None = None) -> Any:
    """``fn`` called on the values of ``args`` and ``kwargs``; in-place changes to a
    rebuilt container are written back to the original (see the module docstring)."""
    copies: list[Copy] = []
    with _walking():
        plain = replace(args, NodeOperators, _value, copies)
        named = {k: replace(v, NodeOperators, _value, copies) for k, v in kwargs.items()} if kwargs else {}
    if not copies:  # the common case: nothing to write back
        return fn(*plain, **named)
    try:
        return fn(*plain, **named)
    finally:
        with _walking():
            write_back(copies)


async def acall_on_values(fn: Callable[..., Awaitable[Any]], args: tuple, kwargs: dict | None = None) -> Any:
    """``call_on_values`` for an async function: the write-back follows the awaited call."""
    copies: list[Copy] = []
    with _walking():
        plain = replace(args, NodeOperators, _value, copies)
        named = {k: replace(v, NodeOperators, _value, copies) for k, v in kwargs.items()} if kwargs else {}
    try:
        return await fn(*plain, **named)
    finally:
        with _walking():
            write_back(copies)


__all__ = ["acall_on_values", "call_on_values", "iter_nodes", "resolve", "unique_nodes"]
