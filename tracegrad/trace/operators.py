"""Operators traced on nodes, so that a node behaves like the value it holds.

Rules:

* Arithmetic, reflected arithmetic, unary operators, comparisons (``<`` ... ``==``,
  ``!=``), ``[]``, calling, and the common ``str`` / ``list`` / ``dict`` methods return
  new nodes and are recorded.
* ``bool(node)``, ``len(node)``, ``x in node``, ``str(node)`` and f-strings give plain
  values, because Python requires them to. So ``if node == "yes":`` and ``node in
  [1, 2]`` work as on the plain values, but are not recorded as operations: control
  flow is not part of the trace. For a traced length use ``node.len()``; for text
  built from nodes use ``node.format(...)`` or a bundled function.
* Attributes are read with the explicit ``node.getattr(name)``; anything else is
  reached through ``node.data``.
* Iterating over a node yields traced nodes: ``node[i]`` for each position of a
  sequence (a list, tuple, str, NumPy or JAX array: anything with a length and
  indexing), the keys of a dict, and the items of a traced ``list(node)`` for any
  other iterable (a set, a generator). So ``a, b = node`` unpacks into traced items.
  Iterating a value that is not iterable (``a, b = f(1)`` where ``f`` returned None, a
  number, a 0-d array) raises ``ExecutionError`` carrying an error node, as a failed
  ``node[0]`` does, so it can be used as feedback.
* ``node.clone()`` is a traced copy: an operation whose input is the node, holding a
  deep copy of the value. (``copy.copy`` and ``copy.deepcopy`` give detached copies:
  see ``tracegrad.trace.node``.)
* A traced call (``node(...)``, ``tracegrad.trace.apply``, or any caller running its
  function through ``call_on_values``) gets the values of its arguments: a list, dict,
  set or dataclass that holds no node reaches the function as the same object, so its
  changes in place are the caller's; one that holds nodes reaches it as a copy with
  values in their place, and the changes the function makes to that copy in place are
  written back to the original when it returns or raises (items it left alone stay the
  nodes they were). The rule is in ``tracegrad.trace.arguments``.

The operators are declared here: the tables below, ``NodeOperators`` (the base class
of ``Node``, with the operators that give plain values) and ``operator_methods``, which
makes the traced ones from the engine's recording functions for ``Node``'s class body.
So this module imports nothing of the rest of the engine. ``tracegrad.trace.apply``
records a call of any plain function.
"""

from __future__ import annotations

import copy
import math
import operator as _op
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from tracegrad.errors import ExecutionError


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


class MethodOperator(Operator):
    """Shows a method call as ``receiver.name(args)``."""

    __slots__ = ()

    def format_call(self, arg_exprs: Any, kwarg_exprs: dict[str, str]) -> str:
        receiver, *rest = arg_exprs
        parts = [*rest, *(f"{k}={v}" for k, v in kwarg_exprs.items())]
        return f"{receiver}.{self.name}({', '.join(parts)})"


# -- the operators -------------------------------------------------------------------

Record = Callable[[Operator, tuple, "dict | None", tuple, Any], Any]
RecordError = Callable[[Operator, tuple, "dict | None", tuple, BaseException], ExecutionError]
CallTraced = Callable[[Operator, tuple, "dict | None"], Any]

BINARY: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "add": (_op.add, "+"),
    "sub": (_op.sub, "-"),
    "mul": (_op.mul, "*"),
    "truediv": (_op.truediv, "/"),
    "floordiv": (_op.floordiv, "//"),
    "mod": (_op.mod, "%"),
    "pow": (_op.pow, "**"),
    "matmul": (_op.matmul, "@"),
    "and": (_op.and_, "&"),
    "or": (_op.or_, "|"),
    "xor": (_op.xor, "^"),
    "lshift": (_op.lshift, "<<"),
    "rshift": (_op.rshift, ">>"),
    "divmod": (divmod, "divmod"),
}
COMPARE: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "lt": (_op.lt, "<"),
    "le": (_op.le, "<="),
    "gt": (_op.gt, ">"),
    "ge": (_op.ge, ">="),
    "eq": (_op.eq, "=="),
    "ne": (_op.ne, "!="),
}
UNARY: dict[str, tuple[Callable[[Any], Any], str]] = {
    "neg": (_op.neg, "-{0}"),
    "pos": (_op.pos, "+{0}"),
    "abs": (abs, "abs({0})"),
    "invert": (_op.invert, "~{0}"),
    "trunc": (math.trunc, "math.trunc({0})"),
    "floor": (math.floor, "math.floor({0})"),
    "ceil": (math.ceil, "math.ceil({0})"),
}
METHOD_NAMES = (
    # str
    "format", "join", "split", "rsplit", "splitlines", "strip", "lstrip", "rstrip",
    "lower", "upper", "title", "capitalize", "replace", "startswith", "endswith",
    "find", "removeprefix", "removesuffix", "zfill",
    # str / list / tuple
    "count", "index",
    # dict
    "get",
)  # fmt: skip

#: Every built-in operator by name (an optimizer's prompt need not explain these).
OPERATORS: dict[str, Operator] = {}


def _operator(name: str, fn: Callable[..., Any], template: str, argnames: tuple[str, ...]) -> Operator:
    op = Operator(name, fn, f"[{name}] {template.format(*argnames)}", template=template, argnames=argnames)
    OPERATORS[name] = op
    return op


for _name, (_fn, _symbol) in BINARY.items():
    _template = f"{_symbol}({{0}}, {{1}})" if _symbol.isalpha() else f"{{0}} {_symbol} {{1}}"
    _operator(_name, _fn, _template, ("a", "b"))
for _name, (_fn, _symbol) in COMPARE.items():
    _operator(_name, _fn, f"{{0}} {_symbol} {{1}}", ("a", "b"))
for _name, (_fn, _template) in UNARY.items():
    _operator(_name, _fn, _template, ("x",))
_GETITEM = _operator("getitem", _op.getitem, "{0}[{1}]", ("obj", "key"))
_ROUND = _operator("round", round, "round({0}, {1})", ("x", "ndigits"))
_GETATTR = _operator("getattr", getattr, "{0}.{1}", ("obj", "name"))
_LEN = _operator("len", len, "len({0})", ("obj",))
_KEYS = _operator("keys", lambda d: list(d.keys()), "list({0}.keys())", ("obj",))
_VALUES = _operator("values", lambda d: list(d.values()), "list({0}.values())", ("obj",))
_ITEMS = _operator("items", lambda d: list(d.items()), "list({0}.items())", ("obj",))
_ITER = _operator("iter", iter, "iter({0})", ("obj",))
_LIST = _operator("list", list, "list({0})", ("obj",))
_CLONE = _operator("clone", copy.deepcopy, "copy.deepcopy({0})", ("x",))
_CALL = Operator("call", lambda fn, *args, **kwargs: fn(*args, **kwargs), "[call] call a function value")
for _name in METHOD_NAMES:
    OPERATORS[_name] = MethodOperator(
        _name,
        lambda obj, *args, _method=_name, **kwargs: getattr(obj, _method)(*args, **kwargs),
        f"[{_name}] calls the value's .{_name}() method",
        argnames=("self",),
    )


# -- the methods of Node -------------------------------------------------------------


class NodeOperators:
    """The base class of ``Node``: the operators that give plain values (Python requires
    them to), and the class the traced operators recognise a node operand by.

    The traced operators are made by ``operator_methods`` and declared in ``Node``'s
    class body. Subclasses provide ``_data`` (the value) and ``data`` (which records a
    read inside a bundled function).
    """

    __slots__ = ()
    _data: Any
    data: Any
    __hash__ = object.__hash__  # == is traced; nodes hash by identity

    def __bool__(self) -> bool:
        return bool(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, item: Any) -> bool:
        return (item._data if isinstance(item, NodeOperators) else item) in self.data

    def __str__(self) -> str:
        return str(self.data)

    def __format__(self, spec: str) -> str:
        return format(self.data, spec)

    def __index__(self) -> int:
        return _op.index(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __complex__(self) -> complex:
        return complex(self.data)


def operator_methods(record: Record, record_error: RecordError, call_traced: CallTraced) -> dict[str, Any]:
    """The traced operators of ``Node`` by attribute name (``__add__``, ``__radd__``,
    ``__eq__``, ``__getitem__``, ``__call__``, ``__iter__``, ``getattr``, ``len``, ``keys``,
    ``clone``, ``format`` ...: one per row of the tables above), calling the engine's recording
    functions, which they hold in closure cells: the cheapest lookup on the hot path."""

    def binary(op: Operator) -> Callable[[Any, Any], Any]:
        fn = op.fn

        def method(self: Any, other: Any) -> Any:
            if isinstance(other, NodeOperators):
                parents = (self,) if other is self else (self, other)
                try:
                    value = fn(self._data, other._data)
                except Exception as exc:
                    raise record_error(op, (self, other), None, parents, exc) from exc
            else:
                parents = (self,)
                try:
                    value = fn(self._data, other)
                except Exception as exc:
                    raise record_error(op, (self, other), None, parents, exc) from exc
            return record(op, (self, other), None, parents, value)

        method.__doc__ = f"Traced ``{op.template.format('self', 'other')}``."  # type: ignore[union-attr]
        return method

    def reflected(op: Operator) -> Callable[[Any, Any], Any]:
        fn = op.fn

        def method(self: Any, other: Any) -> Any:
            try:
                value = fn(other, self._data)
            except Exception as exc:
                raise record_error(op, (other, self), None, (self,), exc) from exc
            return record(op, (other, self), None, (self,), value)

        method.__doc__ = f"Traced ``{op.template.format('other', 'self')}``."  # type: ignore[union-attr]
        return method

    def unary(op: Operator) -> Callable[[Any], Any]:
        fn = op.fn

        def method(self: Any) -> Any:
            try:
                value = fn(self._data)
            except Exception as exc:
                raise record_error(op, (self,), None, (self,), exc) from exc
            return record(op, (self,), None, (self,), value)

        method.__doc__ = f"Traced ``{op.template.format('self')}``."  # type: ignore[union-attr]
        return method

    def called(op: Operator, doc: str) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            return call_traced(op, (self, *args), kwargs or None)

        method.__name__, method.__doc__ = op.name, doc
        return method

    def __iter__(self: Any) -> Iterator[Any]:
        """Traced items: ``self[i]`` for a sequence or array, the keys of a dict, the items
        of a traced ``list(self)`` for other iterables; ``ExecutionError`` for a value that
        is not iterable."""
        value = self.data
        if isinstance(value, Mapping):
            return iter(self.keys())
        cls = type(value)
        try:
            if hasattr(cls, "__len__") and hasattr(cls, "__getitem__"):
                return map(self.__getitem__, range(len(value)))
            iter(value)
        except TypeError as exc:
            raise record_error(_ITER, (self,), None, (self,), exc) from exc
        return iter(call_traced(_LIST, (self,), None))

    methods: dict[str, Any] = {"__iter__": __iter__}
    for name in BINARY:
        methods[f"__{name}__"] = binary(OPERATORS[name])
        methods[f"__r{name}__"] = reflected(OPERATORS[name])
    for name in COMPARE:
        methods[f"__{name}__"] = binary(OPERATORS[name])
    for name in UNARY:
        methods[f"__{name}__"] = unary(OPERATORS[name])
    for name in METHOD_NAMES:
        methods[name] = called(OPERATORS[name], f"Traced ``value.{name}(...)``.")
    for attribute, op, doc in (
        ("__getitem__", _GETITEM, "Traced ``value[key]``."),
        ("__round__", _ROUND, "Traced ``round(value, ndigits)``."),
        ("__call__", _CALL, "Traced call of the value."),
        ("getattr", _GETATTR, "The traced attribute ``name`` of the value."),
        ("len", _LEN, "The traced length of the value (``len(node)`` gives a plain int)."),
        ("keys", _KEYS, "Traced ``list(value.keys())``."),
        ("values", _VALUES, "Traced ``list(value.values())``."),
        ("items", _ITEMS, "Traced ``list(value.items())``."),
        ("clone", _CLONE, "A traced copy: an operation whose input is this node, holding a deep copy of its value."),
    ):
        methods[attribute] = called(op, doc)
    methods["__hash__"] = object.__hash__  # a class defining __eq__ needs its own __hash__
    return methods


__all__ = ["METHOD_NAMES", "OPERATORS", "MethodOperator", "NodeOperators", "Operator", "operator_methods"]
