"""``tg.jax.compile(loss)``: the functional escape hatch.

Returns the recorded graph as a jitted pure function and its parameter pytree, for
users who want ``jax.vmap``, sharding or their own training loop::

    fn, params = tg.jax.compile(loss)          # fn(params, inputs) -> scalar loss
    compiled = tg.jax.compile(loss)
    grads = jax.grad(compiled.fn)(compiled.params, compiled.inputs)
    batched = jax.vmap(compiled.fn, in_axes=(None, (0, None)))(params, (xs, y))
    compiled.update(new_params)                # write the arrays back into the nodes
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from tracegrad.errors import TracegradError
from tracegrad.nodes.kinds import Number
from tracegrad.optimizers.base import ParameterUpdate
from tracegrad.optimizers.jax.replay import Program, ReplayCache, analyze, build_program, differentiable
from tracegrad.trace import Node, ParameterNode, assign, topological


class CompiledLoss:
    """A loss graph compiled to ``fn(params, inputs) -> loss``; unpacks as ``fn, params``.

    * ``fn`` -- jitted and pure: ``params`` a dict of arrays by parameter name,
      ``inputs`` a tuple of arrays (``input_names`` says which node each one is);
    * ``params`` -- the parameters' current values (numbers as 0-d arrays);
    * ``inputs`` -- the values the trace recorded for the inputs;
    * ``parameters`` -- the parameter nodes by name; ``update(params)`` writes new
      values into them (validated, all or nothing).
    """

    def __init__(self, program: Program, parameters: Mapping[str, ParameterNode], inputs: Sequence[Any]) -> None:
        self.program = program
        self.parameters = dict(parameters)
        self.inputs = tuple(inputs)
        self.input_names = tuple(program.input_names)
        self.fn = program.jitted("loss")
        self._value_and_grad = program.jitted("value_and_grad")

    @property
    def params(self) -> dict[str, Any]:
        return current_values(self.parameters)

    def __iter__(self) -> Iterator[Any]:
        yield self.fn
        yield self.params

    def __call__(self, params: Mapping[str, Any] | None = None, inputs: Sequence[Any] | None = None) -> Any:
        """The loss at ``params`` (default: the current values) on ``inputs`` (default: recorded)."""
        return self.fn(self.params if params is None else params, self.inputs if inputs is None else tuple(inputs))

    def value_and_grad(
        self, params: Mapping[str, Any] | None = None, inputs: Sequence[Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """``(loss, grads)`` with grads a dict like ``params``."""
        return self._value_and_grad(
            self.params if params is None else params, self.inputs if inputs is None else tuple(inputs)
        )

    def grad(self, params: Mapping[str, Any] | None = None, inputs: Sequence[Any] | None = None) -> dict[str, Any]:
        return self.value_and_grad(params, inputs)[1]

    @property
    def traces(self) -> int:
        """How many times JAX traced the replay (one per compilation)."""
        return self.program.traces

    def update(self, params: Mapping[str, Any]) -> list[ParameterUpdate]:
        """Write ``params`` back into the parameter nodes (numbers as floats), all or nothing."""
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise KeyError(f"unknown parameters {unknown}; known: {sorted(self.parameters)}")
        names = {id(p): name for name, p in self.parameters.items()}
        triples = assign({self.parameters[k]: to_parameter_value(self.parameters[k], v) for k, v in params.items()})
        return [ParameterUpdate(names[id(p)], old, new) for p, old, new in triples]

    def __repr__(self) -> str:
        return (
            f"CompiledLoss(params={sorted(self.parameters)}, inputs={list(self.input_names)}, "
            f"operations={len(self.program.ops)})"
        )


def current_values(parameters: Mapping[str, ParameterNode]) -> dict[str, Any]:
    """The parameters' values as arrays (float numbers as 0-d arrays of the default float)."""
    out = {}
    for name, p in parameters.items():
        value = p.value
        out[name] = jnp.asarray(value, dtype=jnp.result_type(float)) if isinstance(p.kind, Number) else value
    return out


def to_parameter_value(param: ParameterNode, value: Any) -> Any:
    """An array from JAX as the parameter's kind stores it (a float for numbers)."""
    return float(value) if isinstance(param.kind, Number) else value


def parameter_names(parameters: Iterable[ParameterNode]) -> dict[str, ParameterNode]:
    """Parameters by name; names must be unique (name them with ``name=``)."""
    out: dict[str, ParameterNode] = {}
    for p in parameters:
        if not isinstance(p, ParameterNode):
            raise TypeError(f"{p!r} is not a trainable parameter")
        if p.name in out and out[p.name] is not p:
            raise TracegradError(f"two parameters are called {p.name!r}; give them distinct names with name=...")
        out[p.name] = p
    return out


def check_differentiable(parameters: Iterable[ParameterNode], who: str) -> None:
    for p in parameters:
        if not differentiable(p):
            raise TypeError(
                f"{who} differentiates float arrays and numbers; {p.name} is a {p.kind.describe()} parameter "
                "(use an LLM optimizer for it, or tracegrad.optimizers.Hybrid for both)"
            )


def compile(
    loss: Node | Sequence[Node],
    parameters: Iterable[ParameterNode] | None = None,
    *,
    cache: ReplayCache | None = None,
) -> CompiledLoss:
    """Compile the graph above ``loss`` (a scalar node, or several summed) to a pure function.

    ``parameters`` defaults to every trainable float-array and number parameter
    upstream of the loss; the others are inputs or constants. With a ``cache``, a graph
    of a structure seen before reuses its compiled program.
    """
    losses = [loss] if isinstance(loss, Node) else list(loss)
    if not losses or not all(isinstance(n, Node) for n in losses):
        raise TypeError("compile() needs the loss node (or a list of loss nodes)")
    if parameters is None:
        found = [n for n in topological(losses) if isinstance(n, ParameterNode) and differentiable(n)]
        if not found:
            raise TracegradError("no float-array or number parameter is upstream of the loss")
        params = parameter_names(found)
    else:
        params = parameter_names(parameters)
        check_differentiable(params.values(), "compile()")
    analysis = analyze(losses, {id(p): name for name, p in params.items()})
    program = cache.get(analysis.key) if cache is not None else None
    if program is None:
        program = build_program(analysis, losses)
        if cache is not None:
            cache.put(analysis.key, program)
    return CompiledLoss(program, params, analysis.inputs)


__all__ = ["CompiledLoss", "compile"]
