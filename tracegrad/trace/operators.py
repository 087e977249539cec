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
* Iterating over a node holding a list, tuple, str or dict yields traced nodes (items, or
  keys for a dict).
"""

from __future__ import annotations

import math
import operator as _op
from collections.abc import Callable, Iterator
from typing import Any

from tracegrad.errors import ExecutionError
from tracegrad.trace.node import Node, Operator
from tracegrad.trace.recording import call_traced, record, record_error

# -- binary and unary operators ----------------------------------------------------

_BINARY: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
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
_COMPARE: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "lt": (_op.lt, "<"),
    "le": (_op.le, "<="),
    "gt": (_op.gt, ">"),
    "ge": (_op.ge, ">="),
    "eq": (_op.eq, "=="),
    "ne": (_op.ne, "!="),
}
_UNARY: dict[str, tuple[Callable[[Any], Any], str]] = {
    "neg": (_op.neg, "-{0}"),
    "pos": (_op.pos, "+{0}"),
    "abs": (abs, "abs({0})"),
    "invert": (_op.invert, "~{0}"),
    "trunc": (math.trunc, "math.trunc({0})"),
    "floor": (math.floor, "math.floor({0})"),
    "ceil": (math.ceil, "math.ceil({0})"),
}

OPERATORS: dict[str, Operator] = {}


def _operator(name: str, fn: Callable[..., Any], template: str, argnames: tuple[str, ...]) -> Operator:
    op = Operator(name, fn, f"[{name}] {template.format(*argnames)}", template=template, argnames=argnames)
    OPERATORS[name] = op
    return op


def _binary_method(op: Operator) -> Callable[[Node, Any], Node]:
    fn = op.fn

    def method(self: Node, other: Any) -> Node:
        if isinstance(other, Node):
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

    return method


def _reflected_method(op: Operator) -> Callable[[Node, Any], Node]:
    fn = op.fn

    def method(self: Node, other: Any) -> Node:
        try:
            value = fn(other, self._data)
        except Exception as exc:
            raise record_error(op, (other, self), None, (self,), exc) from exc
        return record(op, (other, self), None, (self,), value)

    return method


def _unary_method(op: Operator) -> Callable[[Node], Node]:
    fn = op.fn

    def method(self: Node) -> Node:
        try:
            value = fn(self._data)
        except Exception as exc:
            raise record_error(op, (self,), None, (self,), exc) from exc
        return record(op, (self,), None, (self,), value)

    return method


for _name, (_fn, _symbol) in _BINARY.items():
    _template = f"{_symbol}({{0}}, {{1}})" if _symbol.isalpha() else f"{{0}} {_symbol} {{1}}"
    _bin = _operator(_name, _fn, _template, ("a", "b"))
    setattr(Node, f"__{_name}__", _binary_method(_bin))
    setattr(Node, f"__r{_name}__", _reflected_method(_bin))
for _name, (_fn, _symbol) in _COMPARE.items():
    setattr(Node, f"__{_name}__", _binary_method(_operator(_name, _fn, f"{{0}} {_symbol} {{1}}", ("a", "b"))))
for _name, (_fn, _template) in _UNARY.items():
    setattr(Node, f"__{_name}__", _unary_method(_operator(_name, _fn, _template, ("x",))))
Node.__hash__ = object.__hash__  # type: ignore[method-assign]  # __eq__ is traced; identity hashing


# -- indexing, calling, attributes, length, iteration -------------------------------

_GETITEM = _operator("getitem", _op.getitem, "{0}[{1}]", ("obj", "key"))
_ROUND = _operator("round", round, "round({0}, {1})", ("x", "ndigits"))
_GETATTR = _operator("getattr", getattr, "{0}.{1}", ("obj", "name"))
_LEN = _operator("len", len, "len({0})", ("obj",))
_CALL = Operator("call", lambda fn, *args, **kwargs: fn(*args, **kwargs), "[call] call a function value")
_KEYS = _operator("keys", lambda d: list(d.keys()), "list({0}.keys())", ("obj",))
_VALUES = _operator("values", lambda d: list(d.values()), "list({0}.values())", ("obj",))
_ITEMS = _operator("items", lambda d: list(d.items()), "list({0}.items())", ("obj",))


def _getitem(self: Node, key: Any) -> Node:
    return call_traced(_GETITEM, (self, key))


def _round(self: Node, ndigits: Any = None) -> Node:
    return call_traced(_ROUND, (self, ndigits))


def _call(self: Node, *args: Any, **kwargs: Any) -> Node:
    return call_traced(_CALL, (self, *args), kwargs or None)


def _getattr(self: Node, name: str) -> Node:
    """The traced attribute ``name`` of the value."""
    return call_traced(_GETATTR, (self, name))


def _len(self: Node) -> Node:
    """The traced length of the value (``len(node)`` gives a plain int)."""
    return call_traced(_LEN, (self,))


def _iter(self: Node) -> Iterator[Node]:
    value = self.data
    if isinstance(value, dict):
        yield from _KEYS_METHOD(self)
    elif isinstance(value, (list, tuple, str)):
        for i in range(len(value)):
            yield _getitem(self, i)
    else:
        raise TypeError(
            f"cannot iterate over a traced {type(value).__name__}; iterate over node.data "
            "(not recorded) or convert it to a list in a bundled function"
        )


def _simple(op: Operator) -> Callable[[Node], Node]:
    def method(self: Node) -> Node:
        return call_traced(op, (self,))

    method.__doc__ = f"Traced ``{op.template.format('value') if op.template else op.name}``."
    return method


_KEYS_METHOD = _simple(_KEYS)
Node.__getitem__ = _getitem  # type: ignore[attr-defined]
Node.__round__ = _round  # type: ignore[attr-defined]
Node.__call__ = _call  # type: ignore[attr-defined]
Node.__iter__ = _iter  # type: ignore[attr-defined]
Node.getattr = _getattr  # type: ignore[attr-defined]
Node.len = _len  # type: ignore[attr-defined]
Node.keys = _KEYS_METHOD  # type: ignore[attr-defined]
Node.values = _simple(_VALUES)  # type: ignore[attr-defined]
Node.items = _simple(_ITEMS)  # type: ignore[attr-defined]


# -- common str / list / dict methods ---------------------------------------------

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


class _MethodOperator(Operator):
    """Shows a method call as ``receiver.name(args)``."""

    __slots__ = ()

    def format_call(self, arg_exprs: Any, kwarg_exprs: dict[str, str]) -> str:
        receiver, *rest = arg_exprs
        parts = [*rest, *(f"{k}={v}" for k, v in kwarg_exprs.items())]
        return f"{receiver}.{self.name}({', '.join(parts)})"


def _method(name: str) -> Callable[..., Node]:
    op = _MethodOperator(
        name,
        lambda obj, *args, **kwargs: getattr(obj, name)(*args, **kwargs),
        f"[{name}] calls the value's .{name}() method",
        argnames=("self",),
    )

    def method(self: Node, *args: Any, **kwargs: Any) -> Node:
        return call_traced(op, (self, *args), kwargs or None)

    method.__name__ = name
    method.__doc__ = f"Traced ``value.{name}(...)``."
    OPERATORS[name] = op
    return method


for _name in METHOD_NAMES:
    setattr(Node, _name, _method(_name))


def apply(fn: Callable[..., Any], *args: Any, name: str | None = None, **kwargs: Any) -> Node:
    """Call a plain function on nodes (or values) and record the call as one operation."""
    op = Operator(name or getattr(fn, "__name__", "apply"), fn, (fn.__doc__ or "").strip())
    return call_traced(op, args, kwargs or None)


__all__ = ["OPERATORS", "METHOD_NAMES", "apply", "ExecutionError"]
