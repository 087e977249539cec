"""Nested traces: the operations inside a ``@bundle(trace_inside=True)`` call.

Such a call runs its function with tracing on, on its argument nodes themselves, and
records what happens inside as the call's *inner graph*: the outer trace still holds
one operation (its parents are the arguments, the nodes read inside and the code
parameter, exactly as for any bundle), while ``inner_graph(node)`` gives the inner
operations, so an optimizer can show the steps that led from a parameter to the
call's result. Inner nodes are children of the outer nodes they were computed from,
never parents of the outer operation: backward, subgraphs, pictures and the JAX
replay see the one operation only.

The inner graph of an operation is kept in a table weakly keyed by its node: it lives
exactly as long as the node, and nothing is kept for a node nobody holds.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from tracegrad.trace import Node, OperationNode, recording, resolve, running_bundle, serial_mark, tracing, unique_nodes

_INNER: weakref.WeakKeyDictionary[Node, InnerGraph] = weakref.WeakKeyDictionary()


class InnerGraph:
    """The operations recorded inside one call of a ``trace_inside`` bundle.

    ``nodes``: every operation recorded inside, in creation order. ``outputs``: the
    nodes made inside that the result came from (returned, or read through ``.data``,
    e.g. by an ``if``). Nodes made before the call are *outer* nodes: the arguments and
    the values the function read; so is a parameter made during it (a per-object code
    parameter made on first use).
    """

    __slots__ = ("nodes", "outputs", "_first")

    def __init__(self, nodes: tuple[Node, ...], outputs: tuple[Node, ...], first_serial: int) -> None:
        self.nodes = nodes
        self.outputs = outputs
        self._first = first_serial

    def is_inner(self, node: Node) -> bool:
        """Whether ``node`` was made during the call (rather than being an outer node)."""
        return node.serial >= self._first and not node.trainable

    def order(self) -> list[Node]:
        """The inner nodes the outputs depend on, outputs included, parents before
        children: a walk from the outputs (the same order whatever the interleaving of
        threads inside the call), linear in their number."""
        order: list[Node] = []
        seen: set[int] = set()
        for root in self.outputs:
            if id(root) in seen:
                continue
            seen.add(id(root))
            stack = [(root, iter(root.parents))]
            while stack:
                node, parents = stack[-1]
                for parent in parents:
                    if id(parent) not in seen and self.is_inner(parent):
                        seen.add(id(parent))
                        stack.append((parent, iter(parent.parents)))
                        break
                else:
                    stack.pop()
                    order.append(node)
        return order

    def steps(self, sources: Collection[Node] | None = None) -> list[OperationNode]:
        """The inner operations on a path from one of ``sources`` (outer nodes; None:
        from anything) to the outputs, parents before children."""
        order = self.order()
        if sources is None:
            return [n for n in order if isinstance(n, OperationNode)]
        depends = {id(n) for n in sources}
        found: list[OperationNode] = []
        for node in order:
            if any(id(p) in depends for p in node.parents):
                depends.add(id(node))
                found.append(node)  # type: ignore[arg-type]
        return found

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"<InnerGraph of {len(self.nodes)} operations, {len(self.outputs)} outputs>"


def inner_graph(node: Node) -> InnerGraph | None:
    """The inner graph recorded for ``node`` by a ``trace_inside`` bundle, or None."""
    if not _INNER:  # the common case: no trace_inside call is alive
        return None
    try:
        return _INNER.get(node)
    except TypeError:  # not weakly referenceable: not a node
        return None


class _Reads(list):
    """The ``.data`` reads of a call, each noted with how many operations had been
    recorded inside before it (to merge reads and inner inputs in the order they
    happened)."""

    def __init__(self, recorded: list[Node]) -> None:
        super().__init__()
        self.recorded = recorded
        self.marks: list[int] = []

    def append(self, node: Node) -> None:
        self.marks.append(len(self.recorded))
        super().append(node)

    def extend(self, nodes: Any) -> None:
        for node in nodes:
            self.append(node)


class InsideRun:
    """One call of a ``trace_inside`` bundle: ``active()`` runs the function body with
    tracing on and its operations collected; then ``result(value)``, and
    ``dependencies()`` for the outer operation's extra parents."""

    def __init__(self) -> None:
        self.first = serial_mark()
        self.recorded: list[Node] = []
        self.reads: _Reads = _Reads(self.recorded)
        self.returned: tuple[Node, ...] = ()

    @contextmanager
    def active(self) -> Iterator[None]:
        """Record operations (and collect ``.data`` reads) while the function runs; a
        bundle called inside records its own operation there, as at top level."""
        with recording() as rec, running_bundle(self.reads), tracing(True):
            self.recorded = rec.nodes
            self.reads.recorded = rec.nodes
            yield

    def result(self, value: Any) -> Any:
        """The plain value of what the function returned (nodes replaced by values)."""
        self.returned = unique_nodes(value)
        return resolve(value) if self.returned else value

    def dependencies(self) -> list[Node]:
        """The outer nodes the call depended on, in the order they were touched: those
        read through ``.data``, the outer inputs of the inner operations, and the outer
        nodes returned."""
        outer = self._outer
        found: list[Node] = []
        reads, marks = list(self.reads), self.reads.marks
        j = 0
        for i, node in enumerate(self.recorded):
            while j < len(reads) and marks[j] <= i:
                if outer(reads[j]):
                    found.append(reads[j])
                j += 1
            found.extend(p for p in node.parents if outer(p))
        found.extend(n for n in reads[j:] if outer(n))
        found.extend(n for n in self.returned if outer(n))
        return found

    def _outer(self, node: Node) -> bool:
        return node.serial < self.first or node.trainable

    def attach(self, node: Node, failed: Node | None = None) -> InnerGraph:
        """Keep the inner graph of this call for the outer ``node`` (``failed``: the
        inner error node an exception came from)."""
        outputs: dict[int, Node] = {}
        for n in (*self.returned, *self.reads, *((failed,) if failed is not None else ())):
            if not self._outer(n):
                outputs.setdefault(id(n), n)
        graph = InnerGraph(tuple(self.recorded), tuple(outputs.values()), self.first)
        _INNER[node] = graph
        return graph


__all__ = ["InnerGraph", "InsideRun", "inner_graph"]
