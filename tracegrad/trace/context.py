"""Recording context, kept in ``contextvars`` so threads and asyncio tasks trace apart.

Four pieces of per-context state, none of them global:

* whether operations are recorded at all (``no_trace`` turns it off, re-entrantly);
* the recordings currently open (``recording()`` blocks collect the nodes made inside);
* the reads of ``Node.data`` made while a bundled function runs, so a function that
  reads a node it was not given still records the dependency;
* whether each recorded operation is added to its parents' ``children``
  (``keeping_children()``). It is off by default: a weak reference per operation
  costs about a third of a traced ``+``, which every user would pay for a query few
  make. It is kept as one more observer among the open recordings, so that when it
  is off the recording of an operation does not even check for it.

Code outside the engine uses the functions and context managers below, never the
context variables themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from tracegrad.trace.weak_children import adopt

if TYPE_CHECKING:
    from tracegrad.trace.node import Node

TRACING: ContextVar[bool] = ContextVar("tracegrad_tracing", default=True)
# The observers of recorded operations: ``recording()`` blocks, and the children keeper.
RECORDINGS: ContextVar[tuple[Recording | ChildKeeper, ...]] = ContextVar("tracegrad_recordings", default=())
# Inside a bundled function: the list that collects nodes whose ``.data`` was read.
READS: ContextVar[list[Node] | None] = ContextVar("tracegrad_reads", default=None)


class Recording:
    """The nodes recorded while a ``recording()`` block was open, in creation order."""

    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)


class _ChildLinks:
    """In place of a recording's node list: links each node given to its parents."""

    __slots__ = ()

    def append(self, node: Node) -> None:
        adopt(node, node.parents)

    def extend(self, nodes: list[Node]) -> None:
        for node in nodes:
            adopt(node, node.parents)


class ChildKeeper:
    """The observer ``keeping_children()`` opens: it keeps no node, it links each one
    recorded to its parents' ``children`` (weakly)."""

    __slots__ = ()
    nodes = _ChildLinks()


_KEEPER = ChildKeeper()


def is_tracing() -> bool:
    """Whether operations on nodes are being recorded in the current context."""
    return TRACING.get()


@contextmanager
def tracing(enabled: bool = True) -> Iterator[None]:
    """Turn recording on or off for the block; nests and restores on exit."""
    token = TRACING.set(enabled)
    try:
        yield
    finally:
        TRACING.reset(token)


@contextmanager
def keeping_children(enabled: bool = True) -> Iterator[None]:
    """While open, each recorded operation is added (weakly) to its parents'
    ``node.children``; ``keeping_children(False)`` stops it inside; restores on exit."""
    others = tuple(r for r in RECORDINGS.get() if r is not _KEEPER)
    token = RECORDINGS.set((*others, _KEEPER) if enabled else others)
    try:
        yield
    finally:
        RECORDINGS.reset(token)


def no_trace():
    """Run a block without recording: operations on nodes return parentless nodes.

    Re-entrant: nested ``no_trace`` blocks, and ``tracing(True)`` inside one, restore
    the outer state on exit.
    """
    return tracing(False)


@contextmanager
def running_bundle(reads: list[Node]) -> Iterator[list[Node]]:
    """While a bundled function runs: collect its reads of ``Node.data`` in ``reads``
    and record no operations (nested bundles and operators just run)."""
    reads_token = READS.set(reads)
    tracing_token = TRACING.set(False)
    try:
        yield reads
    finally:
        TRACING.reset(tracing_token)
        READS.reset(reads_token)


def current_reads() -> list[Node] | None:
    """The reads list of the bundled function running now, or None outside one."""
    return READS.get()


@contextmanager
def recording() -> Iterator[Recording]:
    """Collect every node recorded inside the block (outer recordings see them too)."""
    rec = Recording()
    token = RECORDINGS.set((*RECORDINGS.get(), rec))
    try:
        yield rec
    finally:
        RECORDINGS.reset(token)
