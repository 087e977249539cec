"""Recording context, kept in ``contextvars`` so threads and asyncio tasks trace apart.

Three pieces of per-context state, none of them global:

* whether operations are recorded at all (``no_trace`` turns it off, re-entrantly);
* the recordings currently open (``recording()`` blocks collect the nodes made inside);
* the reads of ``Node.data`` made while a bundled function runs, so a function that
  reads a node it was not given still records the dependency.

Code outside the engine uses the functions and context managers below, never the
context variables themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracegrad.trace.node import Node

TRACING: ContextVar[bool] = ContextVar("tracegrad_tracing", default=True)
RECORDINGS: ContextVar[tuple[Recording, ...]] = ContextVar("tracegrad_recordings", default=())
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
