"""Node types of the trace (values, parameters, operation results, errors) and the
recording of operations, the one place operation and error nodes are made.

Every node holds a Python value (``data``) and a serial number drawn from a process
counter (not a registry: nothing is kept alive by it). Serials grow with creation
time, and a node's parents always exist before it does, so sorting by serial is a
topological order of any graph.

``record`` and ``record_error`` build the node of a call that ran (or failed) and add
it to the open ``recording()`` blocks; when tracing is off they make a parentless node
instead, and inside a bundled function they report the call's inputs as reads of the
enclosing call. ``call_traced`` runs an operator on the values of its arguments (by
the rule of ``tracegrad.trace.arguments``) and records the call. They live beside the
node types because ``Node``'s traced operators are made from them, and they make
``OperationNode``s.

Children: inside ``keeping_children()`` (``tracegrad.trace.context``: off by default, as
a weak reference per operation costs about a third of a traced ``+``) each operation is
added weakly to its parents' ``node.children``; a node keeps no child alive.

Copies: ``copy.deepcopy(node)`` is a *detached* node (no parents, feedback or children;
a new identity and serial) holding a deep copy of the value; ``copy.copy(node)`` the
same holding the same value object. A parameter stays a parameter of its kind, any
other node becomes a plain ``Node``; a given name is kept (a parameter copied with its
module keeps its path), an automatic one is not. Nodes copied together (a list, a
module) share their copies through the ``deepcopy`` memo. ``node.clone()`` is a
*traced* copy: an operation whose input is the node, so feedback on it reaches the node.
"""

from __future__ import annotations

import copy
import itertools
import traceback as _traceback
from typing import Any

from tracegrad.errors import ExecutionError, InvalidValueError
from tracegrad.trace.arguments import call_on_values, iter_nodes, resolve, unique_nodes
from tracegrad.trace.backward import Feedback, clear_upstream, propagate
from tracegrad.trace.containers import find
from tracegrad.trace.context import READS, RECORDINGS, TRACING
from tracegrad.trace.kind import Kind
from tracegrad.trace.operators import NodeOperators, Operator, operator_methods
from tracegrad.trace.weak_children import alive

_serials = itertools.count()
_new = object.__new__  # a plain call: ``OperationNode.__new__`` is a slow lookup on a class


def serial_mark() -> int:
    """A number above the serial of every node made so far and below every later one's."""
    return next(_serials)


# -- recording --------------------------------------------------------------------------


def record(op: Operator, args: tuple, kwargs: dict | None, parents: tuple[Node, ...], value: Any) -> Node:
    """Make the node for a finished operation (a parentless one when not tracing)."""
    if not TRACING.get():
        reads = READS.get()
        if reads is not None:  # inside a bundled function: the inputs are its dependencies
            reads.extend(parents)
        return Node(value)
    # Filled in place rather than through __init__ or a shared helper: this is the hot
    # path of every traced operator, and each call saved is a measurable share of it.
    node = _new(OperationNode)
    node._data = value
    node._serial = next(_serials)
    node._name = node._description = node._feedback = None
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
    tracing = TRACING.get()
    node = _new(ErrorNode)
    node._data = exc
    node._serial = next(_serials)
    node._name = node._description = node._feedback = None
    node._op, node._args, node._kwargs = op, args, kwargs
    node._parents = parents if tracing else ()
    node._traceback = "".join(_traceback.format_exception(exc)).rstrip()
    if tracing:
        for rec in RECORDINGS.get():
            rec.nodes.append(node)
    else:
        reads = READS.get()
        if reads is not None:
            reads.extend(parents)
    return ExecutionError(node)


def call_traced(op: Operator, args: tuple, kwargs: dict | None = None) -> Node:
    """Run ``op`` on the values of ``args``/``kwargs`` and record the call.

    An exception becomes an error node, raised as ``ExecutionError``. Containers are
    passed by the rule of ``tracegrad.trace.arguments`` (in-place changes kept).
    """
    parents = unique_nodes((args, kwargs)) if kwargs else unique_nodes(args)
    try:
        # with no node inside, the arguments are passed as they are
        value = call_on_values(op.fn, args, kwargs) if parents else op.fn(*args, **(kwargs or {}))
    except Exception as exc:
        raise record_error(op, args, kwargs, parents, exc) from exc
    if isinstance(value, Node):  # e.g. calling a node that holds a bundled function
        if value._parents or isinstance(value, ParameterNode):
            parents = (*parents, value) if all(p is not value for p in parents) else parents
        value = value._data
    return record(op, args, kwargs, parents, value)


# -- node types -------------------------------------------------------------------------


class Node(NodeOperators):
    """A traced value. Operations on it are recorded; ``data`` is the plain value.

    Its operators, and the rules for which ones are recorded, are in
    ``tracegrad.trace.operators``.
    """

    __slots__ = ("_data", "_serial", "_name", "_description", "_feedback", "_children", "__weakref__")

    _parents: tuple[Node, ...] = ()
    # The traced operators: +, -, ==, <, [], calls, iteration, .format(), .len() ...
    # (plain bool(), len(), str(), int() ... come from NodeOperators).
    vars().update(operator_methods(record, record_error, call_traced))

    def __init__(self, value: Any, *, name: str | None = None, description: str | None = None) -> None:
        if isinstance(value, Node):
            raise TypeError("Node(value): value is already a node; use tracegrad.node(value) to reuse it")
        self._data = value
        self._serial = next(_serials)
        self._name = name
        self._description = description
        self._feedback: list[Feedback] | None = None

    # -- value and identity -------------------------------------------------------------
    @property
    def data(self) -> Any:
        """The plain Python value (reading it inside a bundle records the dependency)."""
        reads = READS.get()
        if reads is not None:
            reads.append(self)
        return self._data

    @property
    def value(self) -> Any:
        """The plain Python value, without recording a read (for optimizers and reports)."""
        return self._data

    @property
    def name(self) -> str:
        """A readable name: the one given, else the value's type (or operation) plus serial."""
        return self._name if self._name is not None else f"{self._base_name()}_{self._serial}"

    @name.setter
    def name(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a node's name must be a non-empty str, not {type(name).__name__}")
        if not name:
            raise ValueError("a node's name must be a non-empty str, not ''")
        self._name = name

    @property
    def given_name(self) -> str | None:
        """The name given explicitly (by the user, a module path or an optimizer), or
        None when the name is made automatically."""
        return self._name

    def _base_name(self) -> str:
        return type(self._data).__name__

    @property
    def serial(self) -> int:
        """Creation order; a topological order of every graph."""
        return self._serial

    @property
    def description(self) -> str | None:
        """What this value is, in words (shown to optimizers)."""
        return self._description

    @property
    def parents(self) -> tuple[Node, ...]:
        """The nodes this one was computed from (empty for leaves)."""
        return self._parents

    @property
    def children(self) -> tuple[Node, ...]:
        """The operation nodes made from this one inside ``keeping_children()`` that are
        still alive, oldest first (held weakly: a node keeps none of them alive)."""
        return alive(getattr(self, "_children", None))  # the slot is set with a first child

    @property
    def is_leaf(self) -> bool:
        return not self._parents

    @property
    def trainable(self) -> bool:
        return False

    # -- feedback -----------------------------------------------------------------------
    @property
    def feedback(self) -> list[Feedback]:
        """Feedback given to this node, or (for parameters) that reached it."""
        return list(self._feedback) if self._feedback else []

    @property
    def has_feedback(self) -> bool:
        """Whether any feedback was given to or reached this node."""
        return bool(self._feedback)

    def clear_feedback(self) -> None:
        """Drop the feedback held by this node only (``zero_feedback`` clears upstream too)."""
        self._feedback = None

    def backward(self, feedback: Any = "") -> None:
        """Give ``feedback`` to this output and propagate it to every parameter upstream.

        Feedback accumulates across outputs and calls until ``zero_feedback()``.
        Linear in the size of the graph.
        """
        propagate(self, feedback._data if isinstance(feedback, Node) else feedback, ParameterNode)

    def zero_feedback(self) -> None:
        """Clear the feedback of this node and of every node upstream of it."""
        clear_upstream(self)

    # -- copies (the rules are in the module docstring) --------------------------------
    def __copy__(self) -> Node:
        """A detached node holding the same value object."""
        return self._detached(self._data)

    def __deepcopy__(self, memo: dict[int, Any]) -> Node:
        """A detached node holding a deep copy of the value."""
        twin = self._detached(None)
        memo[id(self)] = twin  # before the value: it may refer back to this node
        twin._data = copy.deepcopy(self._data, memo)
        return twin

    def _detached(self, value: Any) -> Node:
        twin = _new(Node if isinstance(self, OperationNode) else type(self))
        twin._data = value
        twin._serial = next(_serials)
        twin._name = self._name
        twin._description = self._description
        twin._feedback = None
        return twin

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """The slots to pickle; the weak children are left out (they are this process's)."""
        _, slots = object.__getstate__(self)  # type: ignore[misc]
        slots.pop("_children", None)
        return None, slots

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}={_short_repr(self._data)})"


class ParameterNode(Node):
    """A trainable value with a declared kind; assignments are validated."""

    __slots__ = ("_kind",)

    def __init__(self, value: Any, kind: Kind, *, name: str | None = None, description: str | None = None) -> None:
        try:
            checked = kind.validate(value)
        except InvalidValueError as exc:
            raise InvalidValueError(exc.reason, name=name) from None
        super().__init__(checked, name=name, description=description)
        self._kind = kind

    @property
    def data(self) -> Any:
        reads = READS.get()
        if reads is not None:
            reads.append(self)
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self.update(value)

    def update(self, value: Any) -> Any:
        """Validate and assign a new value; on failure keep the old one and raise."""
        try:
            self._data = self._kind.validate(value)
        except InvalidValueError as exc:
            raise InvalidValueError(exc.reason, name=self.name) from None
        return self._data

    def _base_name(self) -> str:
        return "param"

    def _detached(self, value: Any) -> Node:
        twin = super()._detached(value)
        twin._kind = self._kind  # type: ignore[attr-defined]
        return twin

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def trainable(self) -> bool:
        return True


class OperationNode(Node):
    """The result of a traced operation: knows its operator and its inputs by name."""

    __slots__ = ("_op", "_args", "_kwargs", "_parents")

    def _base_name(self) -> str:
        return self._op.name

    @property
    def operator(self) -> Operator:
        return self._op

    @property
    def description(self) -> str | None:
        return self._description if self._description is not None else self._op.description

    @property
    def args(self) -> tuple:
        """Positional arguments of the call, with nodes in place."""
        return self._args

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the call, with nodes in place."""
        return dict(self._kwargs) if self._kwargs else {}

    @property
    def inputs(self) -> dict[str, Any]:
        """Arguments by name (nodes in place), plus nodes read inside the call."""
        named = self._op.named_arguments(self._args, self._kwargs)
        for extra in self.captured:
            named[f"<read {extra.name}>"] = extra
        return named

    @property
    def captured(self) -> tuple[Node, ...]:
        """Nodes read through ``.data`` during the call rather than passed as arguments."""
        passed = {id(n) for n in find((self._args, self._kwargs), Node)}
        return tuple(p for p in self._parents if id(p) not in passed)


class ErrorNode(OperationNode):
    """An exception raised by a traced operation, with its traceback text."""

    __slots__ = ("_traceback",)

    @property
    def exception(self) -> BaseException:
        return self._data

    @property
    def traceback(self) -> str:
        return self._traceback

    def _base_name(self) -> str:
        return f"error_{self._op.name}"


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "ErrorNode", "Feedback", "Kind", "Node", "OperationNode", "Operator", "ParameterNode",
    "call_traced", "iter_nodes", "record", "record_error", "resolve", "serial_mark", "unique_nodes",
]  # fmt: skip
