"""The evaluation cache: an example's result for given parameter values and guide.

Keyed on (parameter values, example, guide), so evaluating a candidate again -- the
same values on the same examples -- runs nothing: no workflow, no model call, nothing
counted against a budget. Keys are digests of canonical JSON (values through their
kinds' ``to_json``; examples as data, ``repr`` for what is not JSON), the same in every
process, so a checkpoint can carry the cache and a resumed run hits it too.

One cache belongs to one workflow: the workflow's code outside its parameters is not
part of the key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from tracegrad.train.data import Example


def canonical(value: Any) -> str:
    """One JSON spelling of ``value`` (sorted keys; ``repr`` for what is not JSON data)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def parameter_values(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: JSON value}`` of named parameters (through their kinds)."""
    return {name: p.kind.to_json(_value(p)) for name, p in parameters.items()}


def version_of(values: Mapping[str, Any]) -> str:
    """A short, stable name for a set of parameter values (JSON, as from ``parameter_values``)."""
    return digest(dict(values))[:12]


def _value(node: Any) -> Any:
    return node.value if hasattr(type(node), "value") else node.data


def jsonable(value: Any) -> Any:
    """``value`` if it is JSON data, else its ``repr``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return repr(value)


class EvaluationCache:
    """A bounded, thread-safe map from (parameters, example, guide) to a result.

    Entries are JSON data (score, scores, feedback, error, the output as JSON or its
    ``repr``); the least recently used go first beyond ``max_entries``. ``hits`` and
    ``misses`` count lookups.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._added: list[str] = []
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(parameters_digest: str, example: Example, guide_key: str) -> str:
        """The key of one example's result (``parameters_digest``: ``digest`` of the values)."""
        return digest([parameters_digest, example.to_json(), guide_key])

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return dict(entry)

    def peek(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key`` without counting a lookup or refreshing its age."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else dict(entry)

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        with self._lock:
            self._entries[key] = dict(entry)
            self._entries.move_to_end(key)
            self._added.append(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._added.clear()

    def drain(self) -> list[list[Any]]:
        """The entries stored since the last ``drain`` (still held), for an append-only file."""
        with self._lock:
            keys, self._added = self._added, []
            return [[k, self._entries[k]] for k in dict.fromkeys(keys) if k in self._entries]

    def to_json(self) -> list[list[Any]]:
        """The entries, oldest first (what ``load_json`` takes back)."""
        with self._lock:
            return [[k, v] for k, v in self._entries.items()]

    def load_json(self, data: list[list[Any]]) -> None:
        """Replace the entries with saved ones (in order; a later entry of a key wins)."""
        entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        for k, v in data:
            entries[str(k)] = dict(v)
            entries.move_to_end(str(k))
        with self._lock:
            self._entries = entries
            self._added = []
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


__all__ = ["EvaluationCache", "canonical", "digest", "jsonable", "parameter_values", "version_of"]
