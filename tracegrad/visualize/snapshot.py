"""What a picture (or a saved trace) needs of live nodes: a ``SavedTrace``.

The nodes are those of ``tracegrad.trace.topological(outputs)`` (or, given parameters,
of ``tracegrad.trace.subgraph(parameters, outputs)``), named by the names those
queries give, which are the names an optimizer's prompt uses. Values are previewed,
never kept: code as its source, errors as ``Type: message``, large arrays by shape
and dtype, anything else as its ``repr``; each cut to ``PREVIEW_CHARS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracegrad._text import literal, truncate
from tracegrad.errors import TracegradError
from tracegrad.trace import (
    ErrorNode,
    Node,
    OperationNode,
    ParameterNode,
    call_expression,
    node_type,
    subgraph,
    topological,
    unique_names,
)
from tracegrad.visualize.saved import SavedNode, SavedTrace

#: The longest preview kept of a value, a feedback or a description, in characters.
PREVIEW_CHARS = 2000
#: The longest rendering of a constant argument inside a call.
CONSTANT_CHARS = 80
#: Arrays with more elements than this are previewed by shape and dtype only.
ARRAY_ELEMENTS = 64


def as_trace(x: Node | Iterable[Node] | SavedTrace, parameters: Iterable[Any] | None = None) -> SavedTrace:
    """``x`` itself if it is a saved trace, else the snapshot of the nodes ``x``."""
    if isinstance(x, SavedTrace):
        if parameters is not None:
            raise TracegradError(
                "a saved trace is restricted to parameters when it is saved: save_trace(outputs, path, parameters=...)"
            )
        return x
    return snapshot(x, parameters=parameters)


def snapshot(outputs: Node | Iterable[Node], *, parameters: Iterable[ParameterNode] | None = None) -> SavedTrace:
    """The ``SavedTrace`` of ``outputs`` and everything upstream of them (only the
    subgraph joining ``parameters`` to the outputs, when given)."""
    roots = _nodes(outputs)
    if parameters is None:
        nodes = topological(roots)
        names = unique_names(nodes)
        chosen = None
    else:
        params = list(parameters)
        for p in params:
            if not isinstance(p, ParameterNode):
                raise TracegradError(f"parameters must be trainable nodes, not {type(p).__name__} {p!r:.60}")
        part = subgraph(params, roots)
        nodes, names = part.nodes, part.names
        chosen = tuple(names.get(p) or p.name for p in params)
    index = {id(n): i for i, n in enumerate(nodes)}
    output_ids = {id(n) for n in roots}
    saved = []
    for n in nodes:
        is_op = isinstance(n, OperationNode)
        saved.append(
            SavedNode(
                name=names[n],
                type=node_type(n),  # type: ignore[arg-type]
                value=preview(n),
                parents=tuple(index[id(p)] for p in n.parents if id(p) in index),
                kind=n.kind.name if isinstance(n, ParameterNode) else None,
                operation=n.operator.name if is_op else None,
                call=call_expression(n, names, CONSTANT_CHARS) if is_op else None,
                description=truncate(" ".join(n.description.split()), PREVIEW_CHARS) if n.description else None,
                feedback=tuple(_text(e.value) for e in n.feedback if e.output is n),
                reached_by=_reached_by(n, names),
                output=id(n) in output_ids,
            )
        )
    return SavedTrace(nodes=tuple(saved), parameters=chosen)


def preview(node: Node) -> str:
    """The value of ``node`` as a picture shows it, at most ``PREVIEW_CHARS`` long."""
    if isinstance(node, ErrorNode):
        exc = node.exception
        return truncate(f"{type(exc).__name__}: {exc}", PREVIEW_CHARS)
    value = node.value
    if isinstance(node, ParameterNode) and node.kind.name == "code" and isinstance(value, str):
        return truncate(value.strip("\n"), PREVIEW_CHARS)
    shape, size = getattr(value, "shape", None), getattr(value, "size", None)
    if shape is not None and hasattr(value, "dtype") and isinstance(size, int) and size > ARRAY_ELEMENTS:
        return f"<{type(value).__name__} shape={tuple(shape)} dtype={value.dtype}>"
    return truncate(literal(value), PREVIEW_CHARS)


def _text(value: Any) -> str:
    if isinstance(value, Node):
        value = value.value
    return truncate(value if isinstance(value, str) else literal(value), PREVIEW_CHARS)


def _reached_by(node: Node, names: dict[Node, str]) -> tuple[str, ...]:
    if not isinstance(node, ParameterNode):
        return ()
    found = {id(e.output): names.get(e.output) or e.output.name for e in node.feedback if e.output is not node}
    return tuple(found.values())


def _nodes(outputs: Node | Iterable[Node]) -> list[Node]:
    if isinstance(outputs, Node):
        return [outputs]
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, Iterable):
        raise TracegradError(f"expected a node, nodes or a saved trace, not {type(outputs).__name__}")
    roots = list(outputs)
    for n in roots:
        if not isinstance(n, Node):
            raise TracegradError(f"expected nodes, got {type(n).__name__} {n!r:.60}")
    if not roots:
        raise TracegradError("no nodes given: pass an output node or a list of them")
    return roots
