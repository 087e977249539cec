"""Pictures of traces with graphviz.

``to_dot`` builds the picture's description (needs only the ``graphviz`` Python
package); ``render`` also draws it to a file, which needs the system ``dot`` program.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tracegrad.trace import (
    ErrorNode,
    Node,
    OperationNode,
    ParameterNode,
    call_expression,
    node_type,
    topological,
    unique_names,
)

if TYPE_CHECKING:
    import graphviz

_STYLE = {
    "parameter": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#ffd8a8", "color": "#e8590c"},
    "operation": {"shape": "box", "style": "filled", "fillcolor": "#d0ebff", "color": "#1c7ed6"},
    "error": {"shape": "box", "style": "filled,bold", "fillcolor": "#ffc9c9", "color": "#c92a2a"},
    "value": {"shape": "ellipse", "style": "filled", "fillcolor": "#f1f3f5", "color": "#868e96"},
}
_FEEDBACK = {"shape": "note", "style": "filled", "fillcolor": "#fff3bf", "color": "#f08c00", "fontsize": "10"}


def to_dot(
    roots: Node | Iterable[Node],
    *,
    max_value_chars: int = 40,
    title: str | None = None,
) -> graphviz.Digraph:
    """A graphviz picture of ``roots`` and everything upstream of them.

    Parameters are orange, operations blue (labelled with their call), errors red,
    plain values grey; feedback given to a node hangs off it as a yellow note. Nodes are
    named by ``tracegrad.trace.unique_names``, the scheme optimizers' prompts use, so a
    node has the same name in the picture of an output and in the prompt about it.
    """
    import graphviz

    roots = [roots] if isinstance(roots, Node) else list(roots)
    nodes = topological(roots)
    names = unique_names(nodes)
    dot = graphviz.Digraph("trace", graph_attr={"rankdir": "TB", "fontname": "Helvetica"})
    dot.attr("node", fontname="Helvetica", fontsize="11")
    if title:
        dot.attr(label=title, labelloc="t")
    for n in nodes:
        key = _key(n)
        dot.node(key, _label(n, names, max_value_chars), **_STYLE[node_type(n)])
        for parent in n.parents:
            dot.edge(_key(parent), key)
        for i, entry in enumerate(n.feedback):
            if entry.output is n:
                note = f"{key}_fb{i}"
                dot.node(note, _escape(_shorten(f"feedback: {entry.value}", 2 * max_value_chars)), **_FEEDBACK)
                dot.edge(key, note, style="dashed", arrowhead="none")
    return dot


def render(
    roots: Node | Iterable[Node],
    path: str | os.PathLike[str] = "trace",
    *,
    format: str = "svg",
    **options: object,
) -> Path:
    """Draw the trace to ``path.<format>`` (svg, png, pdf ...) and return the file's path."""
    dot = to_dot(roots, **options)  # type: ignore[arg-type]
    target = Path(path)
    stem = target.with_suffix("") if target.suffix.lstrip(".") == format else target
    out = dot.render(filename=stem.name, directory=str(stem.parent), format=format, cleanup=True)
    return Path(out)


def _key(node: Node) -> str:
    return f"n{node.serial}"


def _label(node: Node, names: dict[Node, str], limit: int) -> str:
    lines = [names[node]]
    if isinstance(node, ErrorNode):
        lines.append(_shorten(f"{type(node.exception).__name__}: {node.exception}", limit))
    elif isinstance(node, OperationNode):
        lines.append(_shorten(call_expression(node, names), limit))
        lines.append("= " + _shorten(repr(node.value), limit))
    else:
        if isinstance(node, ParameterNode):
            lines[0] += f" ({node.kind.name})"
        lines.append(_shorten(repr(node.value), limit))
    return "\n".join(_escape(line) for line in lines)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\")
