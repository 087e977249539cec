"""The trace picture of a run report: a saved trace drawn as inline SVG, or its DOT text.

The picture comes from ``<run_dir>/trace.json`` (``tracegrad.visualize.save_trace``),
drawn with ``to_dot`` and graphviz's ``dot``. Without ``dot`` the report shows the DOT
source instead; without a saved trace, or with one that cannot be read, it says so --
a picture never stops a report from being written.

The SVG is parsed and rebuilt before it is inlined: only drawing elements and
attributes are kept (no script, no event handler, no link leaving the page), so a
hostile value in a trace cannot put markup into the report.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from tracegrad.errors import TracegradError
from tracegrad.visualize.graph import INSTALL_HINT

_DROP = {"script", "foreignObject", "style", "iframe", "object", "embed", "image", "use", "animate", "set"}


@dataclass
class TracePicture:
    """What the report shows for the trace: ``svg`` (inline markup) or ``dot`` text, and a note."""

    svg: Markup | None = None
    dot: str | None = None
    note: str = ""


def trace_picture(path: Path) -> TracePicture:
    """The picture of the trace saved at ``path`` (see the module docstring)."""
    if not path.is_file():
        return TracePicture(note=f"This run directory holds no saved trace ({path.name}).")
    from tracegrad import visualize

    load = getattr(visualize, "load_trace", None)
    if load is None:
        return TracePicture(note="This version of tracegrad cannot read saved traces.")
    try:
        trace = load(path)
    except (TracegradError, OSError, ValueError, RecursionError) as exc:
        return TracePicture(note=f"The saved trace {os.fspath(path)!r} could not be read: {_reason(exc)}")
    try:
        dot_text = str(visualize.to_dot(trace))
    except (TracegradError, ValueError, TypeError) as exc:
        return TracePicture(note=f"The saved trace {os.fspath(path)!r} could not be drawn: {_reason(exc)}")
    import graphviz

    try:
        svg = graphviz.Source(dot_text).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        return TracePicture(dot=dot_text, note=f"graphviz's dot program is not installed; {INSTALL_HINT}.")
    except graphviz.CalledProcessError as exc:
        return TracePicture(dot=dot_text, note=f"dot could not draw the trace: {_reason(exc)[:300]}")
    return TracePicture(svg=clean_svg(svg), note="")


def clean_svg(svg: str) -> Markup:
    """``svg`` (a whole SVG document) as inline markup with only drawing elements kept."""
    try:
        root = ET.fromstring(svg.encode("utf-8"))
    except ET.ParseError as exc:
        raise TracegradError(f"the trace picture is not valid SVG: {exc}") from None
    _strip(root)
    return Markup(ET.tostring(root, encoding="unicode", method="xml"))


def _strip(element: ET.Element) -> None:
    element.tag = _local(element.tag)
    for key in list(element.attrib):
        name = _local(key)
        value = element.attrib.pop(key)
        if name.lower().startswith("on") or name in ("href", "src"):
            if name == "href" and value.startswith("#"):
                element.set("href", value)
            continue
        if "url(" in value and "url(#" not in value:
            continue
        element.set(name, value)
    for child in list(element):
        if _local(child.tag) in _DROP or not isinstance(child.tag, str):
            element.remove(child)
        else:
            _strip(child)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else tag


__all__ = ["TracePicture", "clean_svg", "trace_picture"]
