"""The replay program: an analysed graph (see ``analysis``) as a pure JAX function.

``Program`` fills each recorded operation's argument template with the replayed values
of parameters, inputs and earlier operations, calls the same Python function again,
and returns the scalar loss; ``jitted()`` compiles it once per structure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from tracegrad.errors import TracegradError
from tracegrad.optimizers.jax.analysis import ATOMS, SEQUENCES, Analysis, analyze, differentiable, is_array
from tracegrad.optimizers.jax.cache import ReplayCache
from tracegrad.optimizers.jax.errors import NotDifferentiableError
from tracegrad.trace import Node, running_bundle
from tracegrad.trace.containers import is_container, replace

# -- the program: templates filled at trace time ---------------------------------------


class _Slot:
    __slots__ = ("kind", "index")

    def __init__(self, kind: str, index: Any) -> None:
        self.kind = kind
        self.index = index


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Seq:
    __slots__ = ("type", "items")

    def __init__(self, type_: type, items: list[Any]) -> None:
        self.type = type_
        self.items = items


class _Map:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        self.items = items


class _Tree:
    """Any other container the engine looks into (a namedtuple, an ``OrderedDict``, a
    dataclass ...): kept with templates in place of its nodes, rebuilt by the engine's
    one container rule at replay."""

    __slots__ = ("shape",)

    def __init__(self, shape: Any) -> None:
        self.shape = shape


def _template(obj: Any, a: Analysis) -> Any:
    if isinstance(obj, Node):
        kind, index = a.refs[id(obj)]
        return _Const(obj.value) if kind == "c" else _Slot(kind, index)
    t = type(obj)
    if t in ATOMS:
        return obj
    if t in SEQUENCES:
        return _Seq(t, [_template(x, a) for x in obj])
    if t is dict:
        return _Map([(k, _template(v, a)) for k, v in obj.items()])
    if is_array(obj):
        return _Slot("i", a.lifted[id(obj)])
    if is_container(obj):
        return _Tree(replace(obj, Node, lambda n: _template(n, a)))
    return _Const(obj)


class _ReplayOp:
    __slots__ = ("fn", "args", "kwargs", "node_name", "op_name", "treedef", "leaves")

    def __init__(self, node: Node, a: Analysis) -> None:
        op, kwargs = node.operator, node.kwargs
        self.fn = op.fn
        self.args = _template(node.args, a)
        self.kwargs = _template(kwargs, a) if kwargs else None
        self.node_name = node.name
        self.op_name = op.name
        try:
            leaves, self.treedef = jax.tree_util.tree_flatten(node.value)
        except Exception:  # an exotic value: nothing to compare with
            leaves, self.treedef = [], None
        self.leaves = [_leaf_info(x) for x in leaves]

    def check(self, value: Any) -> None:
        """Compare the replayed value with the recorded one (at trace time only)."""
        if self.treedef is None:
            return
        leaves, treedef = jax.tree_util.tree_flatten(value)
        if treedef != self.treedef:
            raise NotDifferentiableError.at(
                self.node_name, self.op_name, f"replayed, it returned {treedef} where the trace recorded {self.treedef}"
            )
        for recorded, replayed in zip(self.leaves, leaves, strict=True):
            if recorded is None:
                continue
            kind, info = recorded
            if kind == "text" and (not isinstance(replayed, (str, bytes)) or replayed != info):
                raise NotDifferentiableError.at(
                    self.node_name,
                    self.op_name,
                    "it returns text built from the parameters, and text carries no gradient",
                )
            if kind == "shape" and hasattr(replayed, "shape") and tuple(replayed.shape) != info:
                raise NotDifferentiableError.at(
                    self.node_name,
                    self.op_name,
                    f"replayed, it returned shape {tuple(replayed.shape)} where the trace recorded {info}",
                )


def _leaf_info(leaf: Any) -> tuple[str, Any] | None:
    if isinstance(leaf, (str, bytes)):
        return ("text", leaf)
    shape = getattr(leaf, "shape", None)
    if isinstance(shape, tuple):
        return ("shape", shape)
    return None


class Program:
    """The replay of one graph structure; ``fn(params, inputs)`` is pure (and jittable).

    Holds no node of the graph it was built from, only functions, constants and names.
    ``traces`` counts how often JAX traced ``fn`` (once per compilation).
    """

    def __init__(self, a: Analysis, losses: Sequence[Node]) -> None:
        self.ops = [_ReplayOp(node, a) for node in a.ops]
        self.losses = [_template(node, a) for node in losses]
        self.loss_names = [node.name for node in losses]
        self.input_names = list(a.input_names)
        self.keep = a.keep
        self.traces = 0
        self.fn: Callable[[Mapping[str, Any], Sequence[Any]], Any] = self._pure
        self._jitted: dict[str, Any] = {}

    def jitted(self, what: str = "loss") -> Any:
        """The jitted ``fn`` (``"loss"``) or its jitted ``value_and_grad``, made once."""
        fn = self._jitted.get(what)
        if fn is None:
            fn = jax.jit(self.fn if what == "loss" else jax.value_and_grad(self.fn))
            self._jitted[what] = fn
        return fn

    def _pure(self, params: Mapping[str, Any], inputs: Sequence[Any]) -> Any:
        self.traces += 1  # a Python side effect: runs when JAX traces, not per call
        with running_bundle([]):  # nested bundles run as plain functions, nothing is recorded
            return self._replay(params, inputs)

    def _replay(self, params: Mapping[str, Any], inputs: Sequence[Any]) -> Any:
        outs: list[Any] = []

        def fill(t: Any) -> Any:
            tt = type(t)
            if tt is _Slot:
                kind = t.kind
                if kind == "o":
                    return outs[t.index]
                if kind == "p":
                    return params[t.index]
                return inputs[t.index]
            if tt is _Const:
                return t.value
            if tt is _Seq:
                return t.type(fill(x) for x in t.items)
            if tt is _Map:
                return {k: fill(v) for k, v in t.items}
            if tt is _Tree:
                return replace(t.shape, (_Slot, _Const), fill)
            return t

        for op in self.ops:
            args = fill(op.args)
            kwargs = fill(op.kwargs) if op.kwargs is not None else {}
            try:
                value = op.fn(*args, **kwargs)
            except TracegradError:
                raise
            except Exception as exc:
                raise NotDifferentiableError.at(
                    op.node_name, op.op_name, f"replaying it on JAX arrays raised {type(exc).__name__}: {exc}"
                ) from exc
            op.check(value)
            outs.append(value)
        total = None
        for name, template in zip(self.loss_names, self.losses, strict=True):
            value = _scalar_loss(fill(template), name)
            total = value if total is None else total + value
        return total


def _scalar_loss(value: Any, name: str) -> Any:
    try:
        arr = jnp.asarray(value)
    except Exception as exc:
        raise NotDifferentiableError(
            f"the loss {name} holds a {type(value).__name__}, not a number: {exc}", node_name=name
        ) from exc
    if arr.size != 1:
        raise NotDifferentiableError(
            f"the loss {name} has shape {arr.shape}; backward() needs a scalar (reduce it, e.g. with jnp.mean)",
            node_name=name,
        )
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise NotDifferentiableError(
            f"the loss {name} has dtype {arr.dtype}; gradients need a real floating-point loss", node_name=name
        )
    return arr.reshape(())


def build_program(a: Analysis, losses: Sequence[Node]) -> Program:
    """The replay program of an analysed graph (the nodes are not kept)."""
    return Program(a, losses)


__all__ = ["Analysis", "Program", "ReplayCache", "analyze", "build_program", "differentiable", "is_array"]
