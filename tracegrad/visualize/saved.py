"""Saved traces: the picture-relevant part of a trace as a self-describing JSON file.

``save_trace(outputs, path)`` writes, for every node upstream of the outputs, what a
picture shows: its name (the one naming scheme, ``tracegrad.trace.unique_names``), its
type, a parameter's kind, the operation and its call, a preview of the value (cut to
``PREVIEW_CHARS``), the feedback given to it, the outputs whose feedback reached it, and
its parents. Nothing is pickled and no value is stored whole, so a saved trace holds
no more than its previews show. ``load_trace(path)`` reads one back as a ``SavedTrace``,
which ``tg.visualize``, ``tg.to_dot`` and ``tg.render`` draw as they draw live nodes.

The file::

    {"format": "tracegrad-trace", "version": 1, "parameters": null | [names],
     "nodes": [{"name", "type", "value", "parents": [indices of earlier nodes], "kind",
                "operation", "call", "description", "feedback", "reached_by", "output"}]}

Nodes are listed parents first; a parent index always points to an earlier node, so a
file can never describe a cycle.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from tracegrad._io import atomic_write_json
from tracegrad.errors import TracegradError

if TYPE_CHECKING:
    from tracegrad.trace import Node, ParameterNode

#: The ``format`` field of a saved trace, and the version this code writes and reads.
FORMAT = "tracegrad-trace"
VERSION = 1


@dataclass(frozen=True)
class SavedNode:
    """One node of a saved trace, as a picture shows it.

    ``type`` is ``"value"``, ``"parameter"``, ``"operation"`` or ``"error"`` (as
    ``tracegrad.trace.node_type`` says); ``value`` is a preview of the value (for an
    error, ``"Type: message"``); ``parents`` are indices of earlier nodes of the trace;
    ``kind`` is a parameter's kind name (``"text"``, ``"code"`` ...); ``operation`` and
    ``call`` the operator's name and the call as an optimizer's prompt writes it;
    ``feedback`` the feedback given to this node; ``reached_by`` the names of the
    outputs whose feedback reached this parameter; ``output`` whether it is an output.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(strict=True, extra="ignore")

    name: Annotated[str, Field(min_length=1)]
    type: Literal["value", "parameter", "operation", "error"]
    value: str
    parents: tuple[int, ...] = ()
    kind: str | None = None
    operation: str | None = None
    call: str | None = None
    description: str | None = None
    feedback: tuple[str, ...] = ()
    reached_by: tuple[str, ...] = ()
    output: bool = False


@dataclass(frozen=True)
class SavedTrace:
    """A trace read from (or ready for) a file: its nodes, parents first.

    ``parameters`` names the parameters the trace was restricted to when it was saved
    (``save_trace(..., parameters=...)``), or is None for the whole trace.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(strict=True, extra="ignore")

    nodes: tuple[SavedNode, ...]
    parameters: tuple[str, ...] | None = None

    @property
    def outputs(self) -> list[SavedNode]:
        """The nodes that were given as outputs."""
        return [n for n in self.nodes if n.output]

    def node(self, name: str) -> SavedNode:
        """The node called ``name``; a ``TracegradError`` if there is none."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise TracegradError(f"the saved trace has no node named {name!r}")

    def to_json(self) -> dict[str, Any]:
        """The JSON form written by ``save_trace``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "parameters": None if self.parameters is None else list(self.parameters),
            "nodes": [_node_json(n) for n in self.nodes],
        }

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "the text") -> SavedTrace:
        """Read the JSON text of a saved trace, checking all of it.

        Anything malformed is a ``TracegradError`` with one sentence that names
        ``source`` and the first problem found.
        """
        try:
            header = _HEADER.validate_json(text)
        except ValidationError as exc:
            raise TracegradError(f"{source} is not a saved trace: {_first_problem(exc)}") from None
        if header.format != FORMAT:
            raise TracegradError(f"{source} is not a saved trace (its format is {header.format!r}, not {FORMAT!r})")
        if header.version != VERSION:
            raise TracegradError(
                f"{source} is a saved trace of format version {header.version}; this tracegrad reads version {VERSION}"
            )
        try:
            trace = _TRACE.validate_json(text)
        except ValidationError as exc:
            raise TracegradError(f"{source} is not a valid saved trace: {_first_problem(exc)}") from None
        _check_graph(trace, source)
        return trace


@dataclass(frozen=True)
class _Header:
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(strict=True, extra="ignore")

    format: str
    version: int


_HEADER = TypeAdapter(_Header)
_TRACE = TypeAdapter(SavedTrace)


def save_trace(
    outputs: Node | Iterable[Node],
    path: str | os.PathLike[str],
    *,
    parameters: Iterable[ParameterNode] | None = None,
) -> Path:
    """Write the trace of ``outputs`` (only the part relevant to ``parameters``, if
    given) to ``path`` as JSON, atomically, and return the path.

    The file holds names, kinds, operations, calls, value previews, feedback and edges
    (the module docstring has the format); ``load_trace`` reads it back.
    """
    from tracegrad.visualize.snapshot import snapshot

    return atomic_write_json(path, snapshot(outputs, parameters=parameters).to_json())


def load_trace(path: str | os.PathLike[str]) -> SavedTrace:
    """Read a trace written by ``save_trace``; a ``TracegradError`` if the file is
    missing, unreadable or not a valid saved trace."""
    target = Path(path)
    try:
        text = target.read_bytes()
    except FileNotFoundError:
        raise TracegradError(f"there is no saved trace at {target}") from None
    except OSError as exc:
        raise TracegradError(f"cannot read the saved trace {target}: {exc.strerror or exc}") from None
    return SavedTrace.from_json(text, source=str(target))


def _node_json(node: SavedNode) -> dict[str, Any]:
    data = asdict(node)
    data["parents"] = list(node.parents)
    data["feedback"] = list(node.feedback)
    data["reached_by"] = list(node.reached_by)
    return data


def _check_graph(trace: SavedTrace, source: str) -> None:
    """What a schema cannot say: parents come first, names are unique."""
    if not trace.nodes:
        raise TracegradError(f"{source} is not a valid saved trace: it has no nodes")
    seen: set[str] = set()
    for index, node in enumerate(trace.nodes):
        if node.name in seen:
            raise TracegradError(f"{source} is not a valid saved trace: two nodes are named {node.name!r}")
        seen.add(node.name)
        for parent in node.parents:
            if not 0 <= parent < index:
                raise TracegradError(
                    f"{source} is not a valid saved trace: node {index} ({node.name!r}) has parent {parent}, "
                    "which is not an earlier node"
                )


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"][:200]
    return f"{where}: {message}" if where else message
