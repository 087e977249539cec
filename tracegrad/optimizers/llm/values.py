"""How values look in a prompt: Python literals, code as code, exceptions as errors."""

from __future__ import annotations

import re
from typing import Any

from tracegrad._text import literal
from tracegrad.nodes.kinds import Code
from tracegrad.optimizers.llm.docstrings import split_docstring
from tracegrad.trace import ErrorNode, Node, ParameterNode

#: Traceback lines kept for an error value (its last frames and the message).
TRACEBACK_LINES = 6
_LIBRARY_FRAME = re.compile(r'^\s*File ".*[/\\]tracegrad[/\\](?:trace|nodes)[/\\]')
_MARKERS = re.compile(r"^\s*[\^~]+\s*$")


def value_text(node: Node) -> str:
    """The value of ``node`` as prompt text: code verbatim (a code variable without its
    docstring, see ``docstrings``), errors with their traceback tail, everything else as
    a Python literal (``repr``)."""
    if isinstance(node, ErrorNode):
        return error_text(node)
    value = node.value
    if isinstance(node, ParameterNode) and isinstance(node.kind, Code):
        return split_docstring(str(value), node.kind.function)[0].strip("\n")
    return literal(value)


def error_text(node: ErrorNode) -> str:
    """``Type: message`` followed by the last user frames of the traceback.

    Frames inside tracegrad's own engine are dropped (they say how the call was
    recorded, nothing about the workflow), and so are the ``^~~`` marker lines.
    """
    exc = node.exception
    head = f"{type(exc).__name__}: {exc}"
    kept: list[str] = []
    in_library = False
    for line in node.traceback.splitlines()[1:]:  # after "Traceback (most recent call last):"
        if line.startswith("  File "):
            in_library = bool(_LIBRARY_FRAME.match(line))
        elif not line.startswith("    "):
            in_library = False
        if in_library or not line.strip() or _MARKERS.match(line):
            continue
        kept.append(line)
    if kept and kept[-1].startswith(type(exc).__name__):
        kept.pop()  # the last line repeats ``head``
    tail = kept[-TRACEBACK_LINES:]
    return "\n".join([head, *tail]) if tail else head


def feedback_text(value: Any) -> str:
    """Feedback as prompt text: strings verbatim, anything else as a literal."""
    if isinstance(value, Node):
        value = value.value
    return value if isinstance(value, str) else literal(value)
