"""Pictures of traces with graphviz: ``visualize``, ``to_dot`` and ``render``.

Each takes output nodes (a node or several) or a trace read by ``load_trace``. The
picture shows the outputs and everything upstream of them, each node named as an
optimizer's prompt names it (``tracegrad.trace.unique_names``); loops and long chains
are folded and big traces are cut to ``max_nodes`` boxes (``tracegrad.visualize.collapse``),
so a trace of ten thousand nodes still draws in seconds. Building the picture needs only
the ``graphviz`` Python package; ``render`` draws it with graphviz's ``dot`` program, and
without that program writes the DOT source instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tracegrad.errors import TracegradError
from tracegrad.trace import Node, ParameterNode
from tracegrad.visualize.collapse import MORE, plan
from tracegrad.visualize.saved import SavedTrace
from tracegrad.visualize.snapshot import as_trace
from tracegrad.visualize.styles import STYLES, escape, feedback_label, group_label, label, more_label, style

if TYPE_CHECKING:
    import graphviz

_log = logging.getLogger(__name__)

#: Formats written as DOT text, without running ``dot``.
TEXT_FORMATS = frozenset({"dot", "gv"})
#: graphviz formats that open a window rather than write a file.
_WINDOW_FORMATS = frozenset({"x11", "xlib", "gtk"})
INSTALL_HINT = "install graphviz to draw it (apt-get install graphviz, brew install graphviz or conda install graphviz)"


def visualize(
    x: Node | Iterable[Node] | SavedTrace,
    *,
    parameters: Iterable[ParameterNode] | None = None,
    max_nodes: int | None = 300,
    collapse: bool = True,
    min_repeats: int = 3,
    max_chain: int = 8,
    max_value_chars: int = 40,
    max_code_lines: int = 12,
    title: str | None = None,
    rankdir: str = "TB",
) -> graphviz.Digraph:
    """A ``graphviz.Digraph`` of the trace of ``x`` (output nodes, or a loaded trace).

    Args:
        x: an output node, several of them, or a ``SavedTrace`` from ``load_trace``.
        parameters: draw only the part of the trace joining these parameters to the
            outputs (``tracegrad.subgraph``); for a saved trace, choose them when saving.
        max_nodes: the most boxes drawn; the nodes furthest from the outputs are left
            out beyond it and counted in one "N more nodes" box. None: no limit.
        collapse: fold repeated loop bodies and long linear chains into summary boxes.
        min_repeats: the fewest repeats of an operation sequence folded as a loop.
        max_chain: the longest linear chain of operations drawn in full.
        max_value_chars: the longest value preview on a box, in characters.
        max_code_lines: the most lines of a code parameter drawn.
        title: a title above the picture.
        rankdir: the direction of the edges: ``"TB"`` (top to bottom), ``"LR"``, ``"BT"``, ``"RL"``.
    """
    import graphviz

    _check_options(max_nodes, min_repeats, max_chain, max_value_chars, max_code_lines, rankdir)
    trace = as_trace(x, parameters)
    nodes = list(trace.nodes)
    layout = plan(nodes, collapse=collapse, min_repeats=min_repeats, max_chain=max_chain, max_nodes=max_nodes)
    dot = graphviz.Digraph("trace", graph_attr={"rankdir": rankdir, "fontname": "Helvetica"})
    dot.attr("node", fontname="Helvetica", fontsize="11")
    if title:
        dot.attr(label=graphviz.nohtml(escape(title)), labelloc="t")
    for i in layout.singles:
        n = nodes[i]
        key = f"n{i}"
        attrs = {"tooltip": graphviz.nohtml(escape(n.description))} if n.description else {}
        dot.node(
            key,
            graphviz.nohtml(label(n, max_chars=max_value_chars, max_code_lines=max_code_lines)),
            **attrs,
            **style(n),
        )
        for j, text in enumerate(n.feedback):
            note = f"{key}_fb{j}"
            dot.node(note, graphviz.nohtml(feedback_label(text, max_chars=max_value_chars)), **STYLES["feedback"])
            dot.edge(key, note, style="dashed", arrowhead="none")
    for group in layout.groups:
        dot.node(group.key, graphviz.nohtml(group_label(group, nodes, max_chars=max_value_chars)), **STYLES["group"])
    if layout.hidden:
        dot.node(MORE, graphviz.nohtml(more_label(layout.hidden, max_nodes)), **STYLES["more"])
    drawn: set[tuple[str, str]] = set()
    for i, n in enumerate(nodes):
        target = layout.place[i]
        for parent in n.parents:
            edge = (layout.place[parent], target)
            if edge[0] != edge[1] and edge not in drawn:
                drawn.add(edge)
                dot.edge(*edge)
    return dot


def to_dot(x: Node | Iterable[Node] | SavedTrace, **options: object) -> str:
    """The DOT source of ``visualize(x, **options)``: text any graphviz tool reads."""
    return visualize(x, **options).source  # type: ignore[arg-type]


def render(x: Node | Iterable[Node] | SavedTrace, path: str | os.PathLike[str], **options: object) -> Path:
    """Draw the trace of ``x`` to ``path``, in the format its extension names, and
    return the path of the file written.

    ``.svg``, ``.png``, ``.pdf`` (any format of graphviz's ``dot``) are drawn by ``dot``;
    ``.dot`` and ``.gv`` are the DOT source. Without ``dot`` installed, the DOT source is
    written beside ``path`` with the ``.dot`` extension, one warning says how to install
    graphviz, and that path is returned. ``options`` are those of ``visualize``.
    """
    import graphviz

    target = Path(path)
    fmt = target.suffix[1:].lower()
    if not fmt:
        raise TracegradError(f"{target} has no extension to name its format: use e.g. .svg, .png, .pdf or .dot")
    if fmt not in graphviz.FORMATS or fmt in _WINDOW_FORMATS:
        raise TracegradError(
            f"{target.suffix!r} is not a picture format graphviz writes: use e.g. .svg, .png, .pdf or .dot"
        )
    source = to_dot(x, **options)
    if fmt in TEXT_FORMATS:
        return _write(target, source.encode("utf-8"))
    try:
        data = graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        fallback = _write(target.with_suffix(".dot"), source.encode("utf-8"))
        _log.warning("graphviz's dot program is not installed: wrote the DOT source to %s; %s", fallback, INSTALL_HINT)
        return fallback
    except graphviz.CalledProcessError as exc:
        said = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise TracegradError(f"dot could not draw {target}: {said[0] if said else exc}") from None
    return _write(target, data)


def _write(target: Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` through a temporary file: never a half-written picture."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _check_options(
    max_nodes: int | None, min_repeats: int, max_chain: int, max_value_chars: int, max_code_lines: int, rankdir: str
) -> None:
    limits = {"min_repeats": (min_repeats, 2), "max_chain": (max_chain, 3), "max_value_chars": (max_value_chars, 8)}
    limits["max_code_lines"] = (max_code_lines, 1)
    if max_nodes is not None:
        limits["max_nodes"] = (max_nodes, 2)
    for name, (value, low) in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise TracegradError(f"{name} must be an integer of at least {low}, not {value!r}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise TracegradError(f"rankdir must be 'TB', 'LR', 'BT' or 'RL', not {rankdir!r}")
