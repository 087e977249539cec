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
