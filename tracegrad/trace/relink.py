"""Relinking a graph that came from another process to this process's objects.

A trace received from a worker holds copies: of the parameters, of the engine's own
operators, with serial numbers drawn in another process. ``relink`` replaces each
parameter copy by this process's parameter of the same name and each well-known
operator by this process's one, and gives the received nodes fresh serials in their
original relative order, so that names stay unique and ``backward`` on a received
output reaches this process's parameters. Open ``recording()`` blocks record the
received operations. Linear in the received graph (plus a sort of its serials).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from tracegrad.errors import ExecutionError
from tracegrad.trace.containers import find, replace
from tracegrad.trace.context import RECORDINGS
from tracegrad.trace.node import Feedback, Node, OperationNode, Operator, ParameterNode, _serials


def _serial_of(node: Node) -> int:
    return node._serial


def relink(outputs: Any, parameters: Mapping[str, ParameterNode]) -> Any:
    """Connect a graph received from another process to this process's parameters.

    ``outputs`` is a node, an ``ExecutionError`` or a container of them (see
    ``tracegrad.trace.containers``) just unpickled. Everywhere in the graph upstream
    of them (parents, arguments, containers inside arguments, feedback), each
    parameter whose name is in ``parameters`` is replaced by that parameter; the other
    received nodes get fresh serial numbers in their original order, and the open
    ``recording()`` blocks record the received operations. Returns ``outputs`` with
    the same replacements. The received nodes are changed in place; linear in the
    graph size (plus sorting the serial numbers).
    """
    mine = {id(p) for p in parameters.values()}
    nodes: list[Node] = []
    seen = set(mine)
    stack = [*find(outputs, Node), *(err.node for err in find(outputs, ExecutionError))]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(node._parents)
    return relink_nodes(outputs, nodes, parameters)[0]


def relink_nodes(value: Any, received: list[Node], parameters: Mapping[str, ParameterNode]) -> tuple[Any, set[str]]:
    """Relink the ``received`` nodes (all of them, found however) and ``value``, which
    holds some of them; returns the relinked value and the names of received
    parameters that matched none of ``parameters``. See ``relink``."""
    swap: dict[int, ParameterNode] = {}
    keep: list[Node] = []
    strays: set[str] = set()
    for node in received:  # names first: an automatic name contains the old serial
        if isinstance(node, ParameterNode):
            mine = parameters.get(node.name)
            if mine is not None and mine is not node:
                swap[id(node)] = mine
                continue
            strays.add(node.name)
        keep.append(node)

    def fix(node: Node) -> Node:
        return swap.get(id(node), node)

    canonical = _well_known_operators()
    for node in keep:
        if isinstance(node, OperationNode):
            if swap:
                node._parents = _fixed_parents(node._parents, swap)
                node._args = replace(node._args, Node, fix)
                if node._kwargs:
                    node._kwargs = replace(node._kwargs, Node, fix)
            op = node._op
            node._op = canonical.get(_operator_key(op), op)
        if swap and node._feedback:
            node._feedback = [Feedback(fix(f.output), f.value) for f in node._feedback]
    keep.sort(key=_serial_of)
    for node in keep:
        node._serial = next(_serials)
    recordings = RECORDINGS.get()
    if recordings:  # as if the operations had run here
        made = [n for n in keep if isinstance(n, OperationNode)]
        for rec in recordings:
            rec.nodes.extend(made)
    return (replace(value, Node, fix) if swap else value), strays


def _fixed_parents(parents: tuple[Node, ...], swap: dict[int, ParameterNode]) -> tuple[Node, ...]:
    if not any(id(p) in swap for p in parents):
        return parents
    fixed: dict[int, Node] = {}
    for p in parents:
        p = swap.get(id(p), p)
        fixed.setdefault(id(p), p)
    return tuple(fixed.values())


def _operator_key(op: Operator) -> tuple:
    return (type(op), op.name, op.description, op.template, op.argnames)


@functools.cache
def _well_known_operators() -> dict[tuple, Operator]:
    """The engine's own operators (``+``, ``[]``, ``str`` methods ...), by what they are."""
    from tracegrad.trace import operators

    ops = [*operators.OPERATORS.values(), *(v for v in vars(operators).values() if isinstance(v, Operator))]
    return {_operator_key(op): op for op in ops}


__all__ = ["relink", "relink_nodes"]
