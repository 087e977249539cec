"""Feedback propagation: one walk over the ancestors of an output, linear in their number.

Feedback is not transformed on the way (that is the optimizer's job, with the whole
subgraph in view). Each parameter upstream of the output records ``Feedback(output,
value)``; the subgraph that connects it to that output is extracted later, on demand,
by ``tracegrad.trace.query``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tracegrad.trace.node import Feedback, Node, ParameterNode


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


def propagate(output: Node, value: Any) -> Feedback:
    """Record ``value`` as feedback on ``output`` and on every parameter upstream."""
    if isinstance(value, Node):
        value = value._data
    entry = Feedback(output, value)
    for node in ancestors((output,)):
        if node is output or isinstance(node, ParameterNode):
            if node._feedback is None:
                node._feedback = [entry]
            else:
                node._feedback.append(entry)
    return entry


def clear_upstream(output: Node) -> None:
    """Drop the feedback held by ``output`` and every node upstream of it."""
    for node in ancestors((output,)):
        node._feedback = None
