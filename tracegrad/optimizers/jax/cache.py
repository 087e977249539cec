"""A bounded, least-recently-used cache of replay programs keyed by graph structure."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class ReplayCache:
    """A least-recently-used cache of compiled programs keyed by graph structure.

    Owned by one optimizer (or passed to ``compile``): nothing global, bounded by
    ``maxsize`` entries.
    """

    def __init__(self, maxsize: int = 16) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        try:
            entry = self._entries.get(key)
        except (TypeError, ValueError):  # a constant whose comparison is not a bool
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, entry: Any) -> None:
        try:
            self._entries[key] = entry
        except (TypeError, ValueError):
            return
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with contextlib.suppress(TypeError, ValueError):
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def info(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self._entries), "maxsize": self.maxsize}


__all__ = ["ReplayCache"]
