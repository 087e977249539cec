"""Node types of the trace: values, parameters, operation results and errors.

Every node holds a Python value (``data``) and a serial number drawn from a process
counter (not a registry: nothing is kept alive by it). Serials grow with creation
time, and a node's parents always exist before it does, so sorting by serial is a
topological order of any graph.
"""

from __future__ import annotations

import itertools
import operator as _operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from tracegrad.errors import InvalidValueError
from tracegrad.trace.containers import find
from tracegrad.trace.context import READS

_serials = itertools.count()


class Feedback(NamedTuple):
    """One piece of feedback: the output it was given to, and what was said."""

    output: Node
    value: Any


class Kind(Protocol):
    """What a parameter's kind must provide (see ``tracegrad.nodes.kinds``)."""

    name: str

    def validate(self, value: Any) -> Any: ...

    def describe(self) -> str: ...


class Operator:
    """A traced operation: the function that ran, its name, and how to show a call.

    ``template`` formats a call from argument expressions, e.g. ``"{0} + {1}"``;
    without one a call is shown as ``name(arg, ...)``.
    """

    __slots__ = ("name", "fn", "description", "template", "argnames", "source")

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        description: str = "",
        *,
        template: str | None = None,
        argnames: Sequence[str] | None = None,
        source: Any = None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.description = description
        self.template = template
        self.argnames = tuple(argnames) if argnames is not None else None
        self.source = source  # the object that made this operator (e.g. a bundle)

    def named_arguments(self, args: tuple, kwargs: dict | None) -> dict[str, Any]:
        """Map a recorded call's arguments to names (positional ones by argnames)."""
        names = self.argnames or ()
        named = {(names[i] if i < len(names) else f"arg{i}"): a for i, a in enumerate(args)}
        if kwargs:
            named.update(kwargs)
        return named

    def format_call(self, arg_exprs: Sequence[str], kwarg_exprs: dict[str, str]) -> str:
        """Render a call from already rendered argument expressions."""
        if self.template is not None and not kwarg_exprs:
            return self.template.format(*arg_exprs)
        parts = [*arg_exprs, *(f"{k}={v}" for k, v in kwarg_exprs.items())]
        return f"{self.name}({', '.join(parts)})"

    def __repr__(self) -> str:
        return f"Operator({self.name!r})"


class Node:
    """A traced value. Operations on it are recorded; ``data`` is the plain value."""

    __slots__ = ("_data", "_serial", "_name", "_description", "_feedback", "__weakref__")

    _parents: tuple[Node, ...] = ()

    def __init__(self, value: Any, *, name: str | None = None, description: str | None = None) -> None:
        if isinstance(value, Node):
            raise TypeError("Node(value): value is already a node; use tracegrad.node(value) to reuse it")
        self._data = value
        self._serial = next(_serials)
        self._name = name
        self._description = description
        self._feedback: list[Feedback] | None = None

    # -- identity -----------------------------------------------------------------
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
            raise TypeError(f"a node's name must be a str, not {type(name).__name__}")
        if not name:
            raise ValueError("a node's name must not be empty")
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
    def is_leaf(self) -> bool:
        return not self._parents

    @property
    def trainable(self) -> bool:
        return False

    # -- feedback -----------------------------------------------------------------
    @property
    def feedback(self) -> list[Feedback]:
        """Feedback given to this node, or (for parameters) that reached it."""
        return list(self._feedback) if self._feedback else []

    @property
    def has_feedback(self) -> bool:
        """Whether any feedback was given to or reached this node."""
        return self._feedback is not None

    def clear_feedback(self) -> None:
        """Drop the feedback held by this node only (``zero_feedback`` clears upstream too)."""
        self._feedback = None

    def backward(self, feedback: Any = "") -> None:
        """Give ``feedback`` to this output and propagate it to every parameter upstream.

        Feedback accumulates across outputs and calls until ``zero_feedback()``.
        Linear in the size of the graph.
        """
        from tracegrad.trace.backward import propagate

        propagate(self, feedback)

    def zero_feedback(self) -> None:
        """Clear the feedback of this node and of every node upstream of it."""
        from tracegrad.trace.backward import clear_upstream

        clear_upstream(self)

    # -- Python protocol (plain values, not traced) --------------------------------
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, item: Any) -> bool:
        return (item._data if isinstance(item, Node) else item) in self.data

    def __str__(self) -> str:
        return str(self.data)

    def __format__(self, spec: str) -> str:
        return format(self.data, spec)

    def __index__(self) -> int:
        return _operator.index(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __complex__(self) -> complex:
        return complex(self.data)

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
        passed = {id(n) for n in iter_nodes((self._args, self._kwargs))}
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


# -- recording ------------------------------------------------------------------------


def iter_nodes(obj: Any) -> Iterator[Node]:
    """Every node inside ``obj``, each once (see ``tracegrad.trace.containers``)."""
    return iter(find(obj, Node))


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


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
