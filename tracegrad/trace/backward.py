"""Feedback propagation: one walk over the ancestors of an output, linear in their number.

Feedback is not transformed on the way (that is the optimizer's job, with the whole
subgraph in view). Each parameter upstream of the output records ``Feedback(output,
value)``; the subgraph that connects it to that output is extracted later, on demand,
by ``tracegrad.trace.query``.

The walks read only the nodes' ``_parents`` and ``_feedback`` slots, so this module
needs nothing of ``tracegrad.trace.node``, which uses it for ``Node.backward``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tracegrad.trace.node import Node


class Feedback(NamedTuple):
    """One piece of feedback: the output it was given to, and what was said."""

    output: Node
    value: Any


def ancestors(outputs: Iterable[Node]) -> Iterator[Node]:
    """Every node the outputs depend on, the outputs included, each once (no order)."""
    stack = list(outputs)
    seen = {id(n) for n in stack}
    while stack:
        node = stack.pop()
        yield node
        for parent in node._parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)


def topological(outputs: Iterable[Node]) -> list[Node]:
    """The outputs and every node they depend on, each once, parents before children.

    A depth-first walk from the outputs in the order given, each node's parents in the
    order its operation took them. The order depends only on the graph, not on when
    nodes were made: examples recorded at once on several threads give the same order
    (and so the same names and the same prompt) in every run. Linear in the ancestors.
    """
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, iter(root._parents))]
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append((parent, iter(parent._parents)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def propagate(output: Node, value: Any, keepers: type) -> Feedback:
    """Record ``value`` as feedback on ``output`` and on every instance of ``keepers``
    (the parameter class) upstream of it."""
    entry = Feedback(output, value)
    for node in ancestors((output,)):
        if node is output or isinstance(node, keepers):
            if node._feedback is None:
                node._feedback = [entry]
            else:
                node._feedback.append(entry)
    return entry


def clear_upstream(output: Node) -> None:
    """Drop the feedback held by ``output`` and every node upstream of it."""
    for node in ancestors((output,)):
        node._feedback = None
