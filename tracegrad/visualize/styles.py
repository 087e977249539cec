"""How each node of a picture looks: its style and its label.

Parameters are rounded boxes with an orange border, filled by kind (text, code,
number, integer, choice, array, structure); operations are blue boxes, outputs darker
blue with a double border, plain inputs grey ellipses, errors red octagons; feedback
hangs off the node it was given to as a yellow note, and a parameter it reached has a
thick border. Summaries of folded nodes are dashed 3-D boxes.

Labels are made of lines: the node's name first (the name an optimizer's prompt
uses), then its call and a short preview of its value. Every line is escaped for DOT
(backslashes doubled, control characters made visible, text that cannot be encoded
replaced), so any user text draws as itself; code and feedback lines are
left-aligned (``\\l``), the others centred.
"""

from __future__ import annotations

import unicodedata

from tracegrad.visualize.collapse import Group
from tracegrad.visualize.saved import SavedNode

_PARAMETER = {"shape": "box", "style": "rounded,filled,bold", "color": "#e8590c"}
#: Fill colour of a parameter, by kind name (``json`` is ``Structure``; other kinds take the ``text`` colour).
KIND_FILLS = {
    "text": "#ffd8a8",
    "code": "#e5dbff",
    "number": "#d3f9d8",
    "integer": "#96f2d7",
    "choice": "#ffec99",
    "array": "#c5f6fa",
    "json": "#eebefa",
}
STYLES: dict[str, dict[str, str]] = {
    "operation": {"shape": "box", "style": "filled", "fillcolor": "#d0ebff", "color": "#1c7ed6"},
    "output": {"shape": "box", "style": "filled,bold", "fillcolor": "#74c0fc", "color": "#1864ab", "peripheries": "2"},
    "error": {"shape": "octagon", "style": "filled,bold", "fillcolor": "#ffc9c9", "color": "#c92a2a"},
    "value": {"shape": "ellipse", "style": "filled", "fillcolor": "#f1f3f5", "color": "#868e96"},
    "group": {"shape": "box3d", "style": "filled,dashed", "fillcolor": "#e7f5ff", "color": "#1c7ed6"},
    "more": {"shape": "box", "style": "dashed", "color": "#868e96", "fontcolor": "#495057"},
    "feedback": {"shape": "note", "style": "filled", "fillcolor": "#fff3bf", "color": "#f08c00", "fontsize": "10"},
}


def style(node: SavedNode) -> dict[str, str]:
    """The graphviz attributes of a node's box."""
    if node.type == "parameter":
        attrs = {**_PARAMETER, "fillcolor": KIND_FILLS.get(node.kind or "", KIND_FILLS["text"])}
        if node.kind == "code":
            attrs["fontname"] = "Courier"
        if node.reached_by:
            attrs["penwidth"] = "3"
        return attrs
    if node.type == "error":
        return STYLES["error"]
    if node.type == "operation":
        return STYLES["output"] if node.output else STYLES["operation"]
    return STYLES["value"]


def label(node: SavedNode, *, max_chars: int, max_code_lines: int) -> str:
    """The label of a node's box: name, call and value preview (code line by line)."""
    if node.type == "parameter":
        head = f"{node.name} ({node.kind})" if node.kind else node.name
        if node.kind == "code":
            return centred(head) + left(node.value.splitlines(), 2 * max_chars, max_code_lines)
        lines = [head, shorten(node.value, max_chars)]
        if node.reached_by:
            lines.append(shorten("feedback from " + ", ".join(node.reached_by), max_chars))
        return centred(*lines)
    if node.type in ("operation", "error"):
        lines = [node.name]
        if node.call:
            lines.append(shorten(node.call, 2 * max_chars))
        lines.append(shorten(node.value, max_chars) if node.type == "error" else "= " + shorten(node.value, max_chars))
        return centred(*lines)
    return centred(node.name, shorten(node.value, max_chars))


def group_label(group: Group, nodes: list[SavedNode], *, max_chars: int) -> str:
    """A summary box: what was folded, from which node to which, and the last value."""
    ops = [i for i in group.members if nodes[i].type == "operation"]
    inputs = len(group.members) - len(ops)
    if group.is_loop:
        head = (
            f"repeated {group.repeats} times: " + " → ".join(group.body[:6]) + (" → …" if len(group.body) > 6 else "")
        )
    else:
        head = "chain"
    count = f"{len(ops)} operations" + (f", {inputs} inputs" if inputs else "")
    span = f"{nodes[ops[0]].name} … {nodes[ops[-1]].name}" if len(ops) > 1 else nodes[ops[0]].name
    last = "last = " + shorten(nodes[ops[-1]].value, max_chars)
    return centred(shorten(head, 2 * max_chars), f"{span} ({count})", last)


def more_label(hidden: int, max_nodes: int | None) -> str:
    """The marker of the nodes left out by the size limit."""
    return centred(
        f"… {hidden:,} more nodes not drawn",
        f"(max_nodes={max_nodes}; parameters=[...] draws only their part)",
    )


def feedback_label(text: str, *, max_chars: int) -> str:
    lines = text.splitlines() or [""]
    lines[0] = "feedback: " + lines[0]
    return left(lines, 2 * max_chars, 6)


def centred(*lines: str) -> str:
    """DOT label text: each line escaped and centred."""
    return "".join(escape(line) + "\\n" for line in lines)


def left(lines: list[str], max_chars: int, max_lines: int) -> str:
    """DOT label text: each line escaped, cut, and left-aligned (``\\l``), at most
    ``max_lines`` of them (a last line says how many more there are)."""
    shown = [shorten_line(line.expandtabs(4), max_chars) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        shown.append(f"… {len(lines) - max_lines} more lines")
    return "".join(escape(line) + "\\l" for line in shown)


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (whitespace runs become one space)."""
    return shorten_line(" ".join(text.split()), limit)


def shorten_line(text: str, limit: int) -> str:
    text = text.rstrip()
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def escape(text: str) -> str:
    """``text`` as DOT label text that draws as itself: backslashes doubled, control
    characters shown as ``\\xNN`` escapes, unencodable characters replaced."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if any(unicodedata.category(c) == "Cc" for c in text):
        text = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    return text.replace("\\", "\\\\")
