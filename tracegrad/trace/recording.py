"""Recording finished operations: the one place operation and error nodes are made.

``record`` and ``record_error`` build the node of a call that ran (or failed) and add
it to the open ``recording()`` blocks; when tracing is off they make a parentless node
instead, and inside a bundled function they report the call's inputs as reads of the
enclosing call. ``call_traced`` runs an operator on the values of its arguments and
records the call.
"""

from __future__ import annotations

import traceback as _traceback
from collections.abc import Callable
from typing import Any

from tracegrad.errors import ExecutionError
from tracegrad.trace.containers import find, replace
from tracegrad.trace.context import READS, RECORDINGS, TRACING
from tracegrad.trace.node import ErrorNode, Node, OperationNode, Operator, ParameterNode, _serials


def unique_nodes(obj: Any) -> tuple[Node, ...]:
    """The distinct nodes inside ``obj`` in order of first appearance."""
    return tuple(find(obj, Node))


def resolve(obj: Any, lookup: Callable[[Node], Any] | None = None) -> Any:
    """``obj`` with every node inside replaced by its value (or by ``lookup(node)``).

    Containers holding no node are returned as they are (see ``containers.replace``).
    """
    return replace(obj, Node, _value if lookup is None else lookup)


def _value(node: Node) -> Any:
    return node._data


def record(op: Operator, args: tuple, kwargs: dict | None, parents: tuple[Node, ...], value: Any) -> Node:
    """Make the node for a finished operation (a parentless one when not tracing)."""
    if not TRACING.get():
        reads = READS.get()
        if reads is not None:  # inside a bundled function: the inputs are its dependencies
            reads.extend(parents)
        return Node(value)
    # Filled in place rather than through __init__ or a shared helper: this is the hot
    # path of every traced operator, and each call saved is a measurable share of it.
    node = OperationNode.__new__(OperationNode)
    node._data = value
    node._serial = next(_serials)
    node._name = None
    node._description = None
    node._feedback = None
    node._op = op
    node._args = args
    node._kwargs = kwargs
    node._parents = parents
    recordings = RECORDINGS.get()
    if recordings:
        for rec in recordings:
            rec.nodes.append(node)
    return node


def record_error(
    op: Operator, args: tuple, kwargs: dict | None, parents: tuple[Node, ...], exc: BaseException
) -> ExecutionError:
    """Make the error node for a failed operation and the error that carries it."""
    node = ErrorNode.__new__(ErrorNode)
    node._data = exc
    node._serial = next(_serials)
    node._name = None
    node._description = None
    node._feedback = None
    node._op = op
    node._args = args
    node._kwargs = kwargs
    tracing = TRACING.get()
    node._parents = parents if tracing else ()
    reads = READS.get()
    if not tracing and reads is not None:
        reads.extend(parents)
    node._traceback = "".join(_traceback.format_exception(exc)).rstrip()
    if tracing:
        for rec in RECORDINGS.get():
            rec.nodes.append(node)
    return ExecutionError(node)


def call_traced(op: Operator, args: tuple, kwargs: dict | None = None) -> Node:
    """Run ``op`` on the values of ``args``/``kwargs`` and record the call.

    An exception becomes an error node, raised as ``ExecutionError``.
    """
    parents = unique_nodes((args, kwargs)) if kwargs else unique_nodes(args)
    try:
        if parents:
            value = op.fn(*resolve(args), **(resolve(kwargs) if kwargs else {}))
        else:  # nothing to unwrap
            value = op.fn(*args, **(kwargs or {}))
    except Exception as exc:
        raise record_error(op, args, kwargs, parents, exc) from exc
    if isinstance(value, Node):  # e.g. calling a node that holds a bundled function
        if value._parents or isinstance(value, ParameterNode):
            parents = (*parents, value) if all(p is not value for p in parents) else parents
        value = value._data
    return record(op, args, kwargs, parents, value)
