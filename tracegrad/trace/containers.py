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
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
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


def replace(obj: Any, cls: type[T], fn: Callable[[T], Any]) -> Any:
    """``obj`` with every instance of ``cls`` inside it replaced by ``fn(instance)``.

    Containers that hold one are rebuilt with the same type (a namedtuple field by
    field, an ``OrderedDict`` or ``defaultdict`` keeping its type and default factory,
    a dataclass as a shallow copy with the fields replaced). A container that holds
    none is returned as the same object, not a copy, so changes a function makes to it
    in place reach the caller.
    """
    return _replace(obj, cls, fn, None)


def _replace(obj: Any, cls: type, fn: Callable[[Any], Any], active: set[int] | None) -> Any:
    if isinstance(obj, cls):
        return fn(obj)
    t = type(obj)
    if t in _ATOMS:
        return obj
    if t is tuple:  # immutable: cannot hold itself but through a mutable container
        items = _replace_items(obj, cls, fn, active)
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
            return _replace_dict(obj, cls, fn, active)
        if isinstance(obj, _SEQUENCES):
            items = _replace_items(obj, cls, fn, active)
            return obj if items is None else _rebuild_sequence(obj, items)
        return _replace_fields(obj, cls, fn, active)
    finally:
        active.discard(id(obj))


def _replace_items(obj: Iterable[Any], cls: type, fn: Callable[[Any], Any], active: set[int] | None) -> list | None:
    """The items of a sequence with replacements, or None when nothing was replaced."""
    items = None
    for i, item in enumerate(obj):
        if isinstance(item, cls):
            new = fn(item)
        elif type(item) in _ATOMS:
            continue
        else:
            new = _replace(item, cls, fn, active)
            if new is item:
                continue
        if items is None:
            items = list(obj)
        items[i] = new
    return items


def _replace_dict(obj: dict, cls: type, fn: Callable[[Any], Any], active: set[int]) -> dict:
    changed = {}
    for key, value in obj.items():
        new = _replace(value, cls, fn, active)
        if new is not value:
            changed[key] = new
    if not changed:
        return obj
    if type(obj) is dict:
        return {k: changed.get(k, v) for k, v in obj.items()}
    rebuilt = copy.copy(obj)  # keeps the type, the order and e.g. a default factory
    rebuilt.update(changed)
    return rebuilt


def _replace_fields(obj: Any, cls: type, fn: Callable[[Any], Any], active: set[int]) -> Any:
    changed = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        new = _replace(value, cls, fn, active)
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


__all__ = ["children", "find", "is_container", "replace"]
