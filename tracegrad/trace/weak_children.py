"""Weakly held lists of children, what ``Node.children`` is made of.

A node's ``_children`` slot is unset (no child kept yet) or ``[limit, ref, ref, ...]``:
weak references to the operation nodes made from it. Once it holds more than ``limit`` references the
dead ones are dropped and the limit becomes twice the live count (at least
``LIMIT``), so pruning costs O(1) per child, amortized, and a long-lived node's list
is as long as its live children: nothing grows for the life of the process. This
module defines that slot's format; it reads no other part of a node.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

LIMIT = 16
_lock = threading.Lock()  # for pruning and for a first list only; appends need none


def adopt(child: Any, parents: Iterable[Any]) -> None:
    """Add a weak reference to ``child`` to the ``_children`` list of each parent."""
    ref = weakref.ref(child)
    for parent in parents:
        kids = getattr(parent, "_children", None)
        if kids is None:
            with _lock:
                kids = getattr(parent, "_children", None)
                if kids is None:
                    kids = parent._children = new()
        add(kids, ref)


def new() -> list:
    """An empty children list."""
    return [LIMIT]


def add(kids: list, ref: Any) -> None:
    """Append the weak reference ``ref``, pruning dead ones when past the limit."""
    kids.append(ref)
    if len(kids) > kids[0]:
        with _lock:  # appends go on meanwhile: only the entries counted here are rewritten
            end = len(kids)
            if end > kids[0]:
                live = [r for r in kids[1:end] if r() is not None]
                kids[1:end] = live
                kids[0] = max(LIMIT, 2 * len(live))


def alive(kids: list | None) -> tuple:
    """The objects still alive, in the order they were added."""
    if not kids:
        return ()
    return tuple(obj for obj in (r() for r in kids[1:]) if obj is not None)


__all__ = ["LIMIT", "add", "adopt", "alive", "new"]
