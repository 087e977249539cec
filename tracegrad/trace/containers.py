"""The one rule for which containers the engine looks into, and the walks built on it.

Looked into: lists, tuples (namedtuples included), dicts (values only; subclasses such
as ``OrderedDict`` and ``defaultdict`` included), sets, frozensets, and dataclass
instances (their fields). Everything else is a leaf: strings, numbers, arrays, nodes,
any other object. Recording an operation (which nodes are its parents), running it
(which values the function receives), a module's parameter walk and the JAX replay
all use this one rule, so they never disagree about what is inside an argument.

The walks are generic over the class they look for (``find(obj, Node)``), so this
module needs nothing of the rest of the engine. A container that refers to itself is
looked into once.

``replace`` returns a container that holds no instance as the same object; one that
does is rebuilt. With a ``copies`` list it also notes each rebuilt *mutable* container
(a list, dict, set or non-frozen dataclass) with its original, and ``write_back``
later carries the changes a function made to such a copy over to the original (see
``write_back`` for how items are matched).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_SEQUENCES = (list, tuple, set, frozenset)
# Types that are never containers; checked first because they are the common case.
_ATOMS = frozenset({str, int, float, bool, complex, bytes, type(None)})


def _is_dataclass_instance(obj: Any) -> bool:
    return hasattr(type(obj), "__dataclass_fields__")  # a dataclass *class* has type ``type``


def _values(obj: Any) -> Iterable[Any] | None:
    """The children of ``obj`` without their keys, or None for a leaf (the fast path)."""
    t = type(obj)
    if t is tuple or t is list:
        return obj
    if t is dict:
        return obj.values()
    if t in _ATOMS:
        return None
    if isinstance(obj, dict):
        return obj.values()
    if isinstance(obj, _SEQUENCES):
        return obj
    if _is_dataclass_instance(obj):
        return [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    return None


def is_container(obj: Any) -> bool:
    """Whether the walks look into ``obj`` (see the module docstring for the rule)."""
    return _values(obj) is not None


def children(obj: Any) -> tuple[tuple[Any, Any], ...]:
    """``(key, child)`` pairs of a container, or ``()`` for a leaf.

    Keys are positions for lists, tuples and sets (in iteration order), keys for dicts
    and field names for dataclasses.
    """
    t = type(obj)
    if t in _ATOMS:
        return ()
    if isinstance(obj, dict):
        return tuple(obj.items())
    if isinstance(obj, _SEQUENCES):
        return tuple(enumerate(obj))
    if _is_dataclass_instance(obj):
        return tuple((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
    return ()


def find(obj: Any, cls: type[T]) -> list[T]:
    """The distinct instances of ``cls`` inside ``obj`` (or ``obj`` itself), in order of
    first appearance; instances of ``cls`` are not looked into."""
    found: dict[int, T] = {}
    _find(obj, cls, found, None)
    return list(found.values())


def _find(obj: Any, cls: type, found: dict[int, Any], seen: set[int] | None) -> None:
    if isinstance(obj, cls):
        found.setdefault(id(obj), obj)
        return
    items = _values(obj)
    if items is None:
        return
    if seen is None:  # made on the first container: most calls look into one tuple only
        seen = set()
    elif id(obj) in seen:
        return
    seen.add(id(obj))
    for item in items:
        if isinstance(item, cls):
            found.setdefault(id(item), item)
        elif type(item) not in _ATOMS:
            _find(item, cls, found, seen)


def replace(obj: Any, cls: type[T], fn: Callable[[T], Any], copies: list[Copy] | None = None) -> Any:
    """``obj`` with every instance of ``cls`` inside it replaced by ``fn(instance)``.

    Containers that hold one are rebuilt with the same type (a namedtuple field by
    field, an ``OrderedDict`` or ``defaultdict`` keeping its type and default factory,
    a dataclass as a shallow copy with the fields replaced). A container that holds
    none is returned as the same object, not a copy, so changes a function makes to it
    in place reach the caller. Each rebuilt mutable container is added to ``copies``
    when one is given, for ``write_back``.
    """
    return _replace(obj, cls, fn, None, copies)


def _replace(
    obj: Any, cls: type, fn: Callable[[Any], Any], active: set[int] | None, copies: list[Copy] | None = None
) -> Any:
    if isinstance(obj, cls):
        return fn(obj)
    t = type(obj)
    if t in _ATOMS:
        return obj
    if t is tuple:  # immutable: cannot hold itself but through a mutable container
        items = _replace_items(obj, cls, fn, active, copies)
        return obj if items is None else tuple(items)
    if not (isinstance(obj, (*_SEQUENCES, dict)) or _is_dataclass_instance(obj)):
        return obj
    if active is None:  # the containers being rebuilt on the current path
        active = set()
    elif id(obj) in active:  # a container that holds itself: left as it is inside
        return obj
    active.add(id(obj))
    try:
        if isinstance(obj, dict):
            rebuilt = _replace_dict(obj, cls, fn, active, copies)
        elif isinstance(obj, _SEQUENCES):
            items = _replace_items(obj, cls, fn, active, copies)
            if items is None:
                return obj
            rebuilt = _rebuild_sequence(obj, items)
            if copies is not None and isinstance(obj, (list, set)):
                copies.append(Copy(obj, rebuilt, tuple(obj), tuple(items)))
            return rebuilt
        else:
            rebuilt = _replace_fields(obj, cls, fn, active, copies)
        if copies is not None and rebuilt is not obj:
            noted = Copy.of(obj, rebuilt)
            if noted is not None:
                copies.append(noted)
        return rebuilt
    finally:
        active.discard(id(obj))


def _replace_items(
    obj: Iterable[Any], cls: type, fn: Callable[[Any], Any], active: set[int] | None, copies: list[Copy] | None
) -> list | None:
    """The items of a sequence with replacements, or None when nothing was replaced."""
    items = None
    for i, item in enumerate(obj):
        if isinstance(item, cls):
            new = fn(item)
        elif type(item) in _ATOMS:
            continue
        else:
            new = _replace(item, cls, fn, active, copies)
            if new is item:
                continue
        if items is None:
            items = list(obj)
        items[i] = new
    return items


def _replace_dict(obj: dict, cls: type, fn: Callable[[Any], Any], active: set[int], copies: list[Copy] | None) -> dict:
    changed = {}
    for key, value in obj.items():
        new = _replace(value, cls, fn, active, copies)
        if new is not value:
            changed[key] = new
    if not changed:
        return obj
    if type(obj) is dict:
        return {k: changed.get(k, v) for k, v in obj.items()}
    rebuilt = copy.copy(obj)  # keeps the type, the order and e.g. a default factory
    rebuilt.update(changed)
    return rebuilt


def _replace_fields(obj: Any, cls: type, fn: Callable[[Any], Any], active: set[int], copies: list[Copy] | None) -> Any:
    changed = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        new = _replace(value, cls, fn, active, copies)
        if new is not value:
            changed[f.name] = new
    if not changed:
        return obj
    rebuilt = copy.copy(obj)
    for name, value in changed.items():
        object.__setattr__(rebuilt, name, value)  # frozen dataclasses too
    return rebuilt


def _rebuild_sequence(obj: Any, items: list[Any]) -> Any:
    t = type(obj)
    if t in _SEQUENCES:
        return t(items)
    if isinstance(obj, tuple) and hasattr(t, "_fields"):  # a namedtuple
        return t(*items)
    if isinstance(obj, list):
        rebuilt = copy.copy(obj)  # keeps the subclass and its attributes
        rebuilt[:] = items
        return rebuilt
    return t(items)


# -- carrying in-place changes back ------------------------------------------------


class Copy:
    """A mutable container rebuilt by ``replace``, with its original and both items.

    ``olds`` are the original's items and ``news`` the copy's, aligned (by position for
    lists and sets, by key for dicts, by field for dataclasses); ``keys`` are the dict
    keys or field names (None for lists and sets).
    """

    __slots__ = ("original", "copy", "olds", "news", "keys")

    def __init__(self, original: Any, copy: Any, olds: tuple, news: tuple, keys: tuple | None = None) -> None:
        self.original = original
        self.copy = copy
        self.olds = olds
        self.news = news
        self.keys = keys

    @classmethod
    def of(cls, original: Any, rebuilt: Any) -> Copy | None:
        """The record of a rebuilt dict or dataclass (None for a frozen dataclass)."""
        if isinstance(original, dict):
            keys = tuple(original)
            return cls(original, rebuilt, tuple(original.values()), tuple(rebuilt[k] for k in keys), keys)
        if type(original).__dataclass_params__.frozen:  # type: ignore[attr-defined]
            return None
        keys = tuple(f.name for f in dataclasses.fields(original))
        olds = tuple(getattr(original, k) for k in keys)
        return cls(original, rebuilt, olds, tuple(getattr(rebuilt, k) for k in keys), keys)

    def changed(self) -> bool:
        """Whether the copy no longer holds exactly the items it was made with."""
        copy, news = self.copy, self.news
        if isinstance(copy, dict):
            return tuple(copy) != self.keys or any(copy[k] is not v for k, v in zip(self.keys, news, strict=True))
        if self.keys is not None:  # a dataclass
            return any(getattr(copy, k) is not v for k, v in zip(self.keys, news, strict=True))
        if len(copy) != len(news):
            return True
        if isinstance(copy, set):
            return {id(x) for x in copy} != {id(x) for x in news}
        return any(a is not b for a, b in zip(copy, news, strict=True))

    def restore(self) -> None:
        """Make the original what the function made of the copy, items taken from nodes
        (or inner copies) put back as those nodes (or inner originals)."""
        back = {id(new): old for old, new in zip(self.olds, self.news, strict=True) if old is not new}
        copy, original = self.copy, self.original
        if isinstance(copy, dict):
            before = dict(zip(self.keys, range(len(self.news)), strict=True))  # type: ignore[arg-type]
            items = {k: self._item(v, before.get(k), back) for k, v in copy.items()}
            original.clear()
            original.update(items)
        elif self.keys is not None:
            for i, key in enumerate(self.keys):
                value = getattr(copy, key)
                if value is not self.news[i]:
                    setattr(original, key, back.get(id(value), value))
        elif isinstance(copy, set):
            items = [back.get(id(x), x) for x in copy]
            original.clear()
            original.update(items)
        else:
            original[:] = _aligned(self.olds, self.news, list(copy), back)

    def _item(self, value: Any, index: int | None, back: dict[int, Any]) -> Any:
        if index is not None and value is self.news[index]:
            return self.olds[index]
        return back.get(id(value), value)


def _aligned(olds: Sequence[Any], news: Sequence[Any], now: list[Any], back: dict[int, Any]) -> list[Any]:
    """The original's new items: the unchanged head and tail of the copy keep their
    original items by position; the items between are matched by identity."""
    n, m = len(news), len(now)
    head = 0
    while head < n and head < m and now[head] is news[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and now[m - 1 - tail] is news[n - 1 - tail]:
        tail += 1
    middle = [back.get(id(x), x) for x in now[head : m - tail]]
    return [*olds[:head], *middle, *olds[n - tail :]]


def write_back(copies: Iterable[Copy]) -> None:
    """Carry the in-place changes made to each rebuilt copy over to its original.

    A copy still holding exactly its items leaves the original untouched. Otherwise the
    original becomes what the copy became: an item that is still the very object
    taken from a node (or an inner rebuilt copy) is put back as that node (or the inner
    original), matched by position where the copy kept its head and tail unchanged and
    by identity in between; any other item is stored as the function left it.
    """
    for c in copies:
        if c.changed():
            c.restore()


__all__ = ["Copy", "children", "find", "is_container", "replace", "write_back"]
