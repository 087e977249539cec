"""``tracegrad.node``: wrap a value as a node, trainable or not."""

from __future__ import annotations

from typing import Any

from tracegrad.nodes.kinds import Kind, resolve_kind
from tracegrad.trace.node import Node, ParameterNode


def node(
    value: Any,
    trainable: bool = False,
    name: str | None = None,
    description: str | None = None,
    kind: Kind | str | None = None,
) -> Node:
    """Wrap ``value`` as a node of the trace.

    ``trainable=True`` makes a parameter an optimizer may change; its ``kind`` (a
    ``Kind`` or one of ``"text"``, ``"number"``, ``"integer"``, ``"json"``,
    ``"array"``) is inferred from the value when not given. A node given as value is
    returned unchanged.
    """
    if isinstance(value, Node):
        if trainable and not value.trainable:
            raise ValueError(f"{value.name} is already a non-trainable node; wrap its .data instead")
        return value
    if trainable:
        return ParameterNode(value, resolve_kind(kind, value), name=name, description=description)
    if kind is not None:
        value = resolve_kind(kind, value).validate(value)
    return Node(value, name=name, description=description)


def parameter(
    value: Any, kind: Kind | str | None = None, *, name: str | None = None, description: str | None = None
) -> ParameterNode:
    """A trainable node: shorthand for ``node(value, trainable=True, ...)``."""
    return node(value, trainable=True, name=name, description=description, kind=kind)  # type: ignore[return-value]
