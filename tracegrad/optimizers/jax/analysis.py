"""Trace replay: a recorded graph as a pure JAX function ``f(params, inputs) -> loss``.

One pass over the ancestors of the loss, in topological order, sorts
every node into one of four roles:

* **parameter** -- one of the parameters being differentiated, referenced by name;
* **operation** -- an operation that depends on a parameter: replayed, by calling the
  same Python function (``operator.fn``) on the replayed values of its arguments;
* **input** -- any other node whose value is an array or a Python float (a data batch,
  a parameter another optimizer owns, the result of an operation that does not depend
  on the parameters), and array constants passed directly as arguments: they become
  arguments of the pure function, so new values of the same shape reuse the compiled
  function;
* **constant** -- everything else (ints, strings, slices, functions ...): baked into the
  program.

The same pass builds the **structure key**: per replayed operation, the function's
identity and the argument pattern (which argument is which parameter, operation,
input or constant, with constants by value and inputs by shape and dtype). Two graphs
with equal keys replay to the same program, so a loop that records the same graph
every step compiles once, and a graph that changed gets a new program instead of
wrong gradients. Like ``jax.jit``, values a bundled function reads from globals or
closures are baked in when it is first compiled; a new function object (a lambda made
anew every step) is a new structure.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tracegrad.optimizers.jax.errors import NotDifferentiableError
from tracegrad.trace import topological
from tracegrad.trace.containers import children, is_container
from tracegrad.trace.node import Node, ParameterNode

ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes, type(Ellipsis)})
SEQUENCES = (list, tuple, set, frozenset)


def is_array(value: Any) -> bool:
    """A JAX array, or a NumPy array / scalar of numbers: what becomes an input."""
    if isinstance(value, jax.Array):
        return True
    return isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biufc"


def _signature(value: Any) -> Hashable:
    if type(value) in (float, int):
        return type(value)
    return (value.shape, value.dtype)


def _atom(t: type, value: Any) -> Hashable:
    """A constant's key: floats by bit pattern, so 0.0 and -0.0 differ and NaN matches itself."""
    if t is float:
        return (t, value.hex())
    if t is complex:
        return (t, value.real.hex(), value.imag.hex())
    return (t, value)


# This module reads the engine's private slots (``_parents``, ``_data``,
# ``_op``, ``_args``, ``_kwargs``) on purpose: ``analyze`` runs on every step over every
# ancestor of the loss, and a property call per slot is a measurable share of a step.


# -- analysis: roles, structure key and input values in one pass ----------------------


class Analysis:
    """What one pass over a loss graph found: its structure key and its input values.

    ``inputs`` are the current input values, in the order the program takes them;
    the remaining fields are what ``build_program`` needs on a cache miss.
    """

    __slots__ = ("key", "inputs", "ops", "refs", "lifted", "keep", "losses", "_passed", "_sigs", "_sources")

    def __init__(self) -> None:
        self.inputs: list[Any] = []
        self._sources: list[Node | str] = []  # per input: its node, or a name
        self.ops: list[Node] = []
        self.refs: dict[int, tuple] = {}
        self.lifted: dict[int, int] = {}
        self.keep: list[Any] = []  # objects whose id() is part of the key
        self._sigs: list[Hashable] = []
        self._passed: set[int] = set()

    # the argument pattern of an operation (the engine's container rule, exact types inline)
    def arg_key(self, obj: Any) -> Hashable:
        if isinstance(obj, Node):
            nid = id(obj)
            self._passed.add(nid)
            ref = self.refs.get(nid)
            return ref if ref is not None else self.external(obj)
        t = type(obj)
        if t in ATOMS:
            return _atom(t, obj)
        if t is tuple or t is list or t is set or t is frozenset:
            return (t, tuple([self.arg_key(x) for x in obj]))
        if t is dict:
            return (t, tuple([(self.freeze(k), self.arg_key(v)) for k, v in obj.items()]))
        if is_array(obj):
            idx = self.lifted.get(id(obj))
            if idx is None:
                idx = self.lifted[id(obj)] = self._add_input(obj, f"const_{len(self.inputs)}")
            return ("i", idx)
        if is_container(obj):  # a namedtuple, an OrderedDict, a dataclass ...: the engine's rule
            return (t, tuple([(self.freeze(k), self.arg_key(v)) for k, v in children(obj)]))
        return self.freeze(obj)

    def external(self, node: Node) -> tuple:
        """The reference to a node that does not depend on the parameters."""
        value = node.value
        if type(value) is float or is_array(value):
            ref: tuple = ("i", self._add_input(value, node))
        else:
            ref = ("c", self.freeze(value))
        self.refs[id(node)] = ref
        return ref

    @property
    def input_names(self) -> list[str]:
        """The inputs' names (made only when a program is built: names cost a format)."""
        return [s.name if isinstance(s, Node) else s for s in self._sources]

    def _add_input(self, value: Any, source: Node | str) -> int:
        self.inputs.append(value)
        self._sources.append(source)
        self._sigs.append(_signature(value))
        return len(self.inputs) - 1

    def freeze(self, value: Any) -> Hashable:
        """A hashable stand-in for a constant: by value (NumPy arrays by content, since
        they can change in place), else by identity (kept alive)."""
        t = type(value)
        if t in ATOMS:
            return _atom(t, value)
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biufc":
            return ("np", value.dtype.str, value.shape, value.tobytes())
        if t is tuple or t is list:
            return (t, tuple([self.freeze(x) for x in value]))
        if t is dict:
            return (t, tuple([(self.freeze(k), self.freeze(v)) for k, v in value.items()]))
        if t is set or t is frozenset:
            return (t, frozenset(self.freeze(x) for x in value))
        if t is slice:
            return (t, self.freeze(value.start), self.freeze(value.stop), self.freeze(value.step))
        try:
            hash(value)
        except TypeError:
            self.keep.append(value)
            return ("id", id(value))
        return (t, value)


def analyze(losses: Sequence[Node], parameters: Mapping[int, str]) -> Analysis:
    """Roles, structure key and inputs of the graph above ``losses``.

    ``parameters`` maps ``id(parameter node)`` to the name it has in the params dict.
    Linear in the number of ancestors.
    """
    a = Analysis()
    refs = a.refs
    depends = set(parameters)
    for pid, name in parameters.items():
        refs[pid] = ("p", name)
    op_keys = []
    for node in topological(losses):
        nid = id(node)
        parents = node.parents
        if nid in parameters:  # its shape and dtype are part of the program
            a._sigs.append(("p", parameters[nid], _signature(node.value)))
            continue
        if nid in depends or not parents:
            continue
        for parent in parents:
            if id(parent) in depends:
                break
        else:
            continue  # does not depend on a parameter: an input or a constant if used
        depends.add(nid)
        refs[nid] = ("o", len(a.ops))
        a.ops.append(node)
        a._passed = passed = set()
        args = []
        for arg in node.args:  # the common case inline: an argument that is a node
            if isinstance(arg, Node):
                aid = id(arg)
                passed.add(aid)
                args.append(refs.get(aid) or a.external(arg))
            else:
                args.append(a.arg_key(arg))
        args_key = tuple(args)
        kwargs = node.kwargs
        kwargs_key = a.arg_key(kwargs) if kwargs else None
        captured_key = None
        if len(parents) > len(passed):  # nodes read through .data inside the function
            captured = []
            for parent in parents:
                if id(parent) in passed:
                    continue
                if id(parent) in depends:
                    raise NotDifferentiableError.at(
                        node.name,
                        node.operator.name,
                        f"the function reads {parent.name} through .data instead of taking it as an argument, "
                        "so no gradient can flow through that read",
                        "Pass it as an argument of the bundled function.",
                    )
                captured.append(a.freeze(parent.value))
            captured_key = tuple(captured)
        op_keys.append((node.operator.fn, args_key, kwargs_key, captured_key))
    a.losses = tuple(refs.get(id(n)) or a.external(n) for n in losses)
    a.key = (tuple(op_keys), tuple(a._sigs), a.losses)
    return a


def differentiable(param: ParameterNode) -> bool:
    """Whether the JAX replay can differentiate ``param``: a float array or a number."""
    from tracegrad.nodes.array import Array
    from tracegrad.nodes.kinds import Number

    kind = param.kind
    if isinstance(kind, Number):
        return True
    if isinstance(kind, Array):
        value = param.value
        return hasattr(value, "dtype") and jnp.issubdtype(value.dtype, jnp.floating)
    return False


__all__ = ["ATOMS", "SEQUENCES", "Analysis", "analyze", "differentiable", "is_array"]
