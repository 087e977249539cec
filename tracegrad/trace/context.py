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

Blocks that turn recording on or off (``no_trace``, ``tracing``, a bundled function's
run) may end in any order: each one takes back only its own setting, and one ended in
another context (a generator closed elsewhere) changes nothing there. A generator,
though, runs in its caller's context, so a block entered in a generator holds in the
caller too while the generator is paused, as ``decimal.localcontext`` does.
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
# The open blocks that set TRACING, innermost last, and the value it had before the first.
_SETTINGS: ContextVar[tuple[bool, tuple[_Setting, ...]]] = ContextVar("tracegrad_tracing_blocks", default=(True, ()))
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


class _Setting:
    """One open block's setting of ``TRACING`` (compared by identity)."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled


def _set_tracing(enabled: bool) -> _Setting:
    """Open a block that sets recording to ``enabled``; ``_unset_tracing`` closes it."""
    base, open_ = _SETTINGS.get()
    setting = _Setting(enabled)
    _SETTINGS.set((base if open_ else TRACING.get(), (*open_, setting)))
    TRACING.set(enabled)
    return setting


def _unset_tracing(setting: _Setting) -> None:
    """Close ``setting``'s block: recording is then what the innermost other open block
    says, or what it was before any; closing a block this context never opened (one
    entered in another context) changes nothing."""
    base, open_ = _SETTINGS.get()
    if setting not in open_:
        return
    rest = tuple(s for s in open_ if s is not setting)
    _SETTINGS.set((base, rest))
    TRACING.set(rest[-1].enabled if rest else base)


def is_tracing() -> bool:
    """Whether operations on nodes are being recorded in the current context."""
    return TRACING.get()


@contextmanager
def tracing(enabled: bool = True) -> Iterator[None]:
    """Turn recording on or off for the block; nests and restores on exit (see the
    module docstring for blocks that end out of order, and for generators)."""
    setting = _set_tracing(enabled)
    try:
        yield
    finally:
        _unset_tracing(setting)


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
    the outer state on exit. Entered in a generator, the block also holds in the caller
    while the generator is paused (a generator runs in its caller's context); to keep
    it inside, open it around the work between two yields.
    """
    return tracing(False)


@contextmanager
def running_bundle(reads: list[Node]) -> Iterator[list[Node]]:
    """While a bundled function runs: collect its reads of ``Node.data`` in ``reads``
    and record no operations (nested bundles and operators just run)."""
    reads_token = READS.set(reads)
    setting = _set_tracing(False)
    try:
        yield reads
    finally:
        _unset_tracing(setting)
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
