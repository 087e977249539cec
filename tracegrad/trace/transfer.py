"""Moving traces between processes: pickling rules, shared objects and relinking.

A trace pickles with its whole upstream graph (nodes, operators, the functions they
ran). Three pieces make a graph that comes back from another process usable here:

* ``dumps`` / ``loads``: cloudpickle (functions of ``__main__`` and of the modules
  named in ``by_value`` travel by value) with rules for what plain pickling gets wrong:
  a graph is written flat, ancestors first, so a chain of any length pickles without
  deep recursion; a lock is sent as a new, unlocked lock; an exception is rebuilt
  without calling its ``__init__`` (whose signature often differs from its ``args``,
  as for ``ExecutionError``).
* ``send`` / ``receive``: a payload sent once (the function and the model, say) is
  numbered object by object on both sides, so that a reply that refers to an object of
  the payload (a parameter, an operator, a bundled function, a class) arrives as the
  sender's own object rather than as a copy. A payload's nodes go without their
  feedback (which would drag the graphs of earlier outputs along).
* ``relink`` (``tracegrad.trace.relink``): the received graph's parameter copies are
  replaced by this process's parameters of the same name, well-known operators by this
  process's ones, and the received nodes get fresh serial numbers; ``backward`` on a
  received output then reaches this process's parameters.

Unpickling runs code chosen by the sender: use it only between processes you trust.
"""

from __future__ import annotations

import functools
import io
import pickle
import threading
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any, TypeVar

from tracegrad.trace.node import Node, ParameterNode
from tracegrad.trace.relink import relink, relink_nodes

Modules = Iterable[ModuleType | str]
T = TypeVar("T")

# Values whose identity never matters: not numbered as shared objects.
_PLAIN = frozenset({str, bytes, int, float, complex, bool, type(None), tuple, frozenset})
_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}
_registry_lock = threading.Lock()  # cloudpickle's by-value registry is process-wide


def cloudpickle() -> ModuleType:
    """The cloudpickle module (the standalone package, else the copy inside Ray)."""
    try:
        import cloudpickle as cp
    except ImportError:
        try:
            from ray import cloudpickle as cp
        except ImportError:
            raise ImportError(
                "moving traces between processes needs cloudpickle: pip install cloudpickle (or 'tracegrad[ray]')"
            ) from None
    return cp


def _new_exception(cls: type[BaseException], args: tuple) -> BaseException:
    return cls.__new__(cls, *args)


def _node(cls: type[Node], earlier: list[Node] | None = None) -> Node:
    """Makes a node when loaded (``earlier``: its ancestors, loaded first; see ``_NodeRules``)."""
    return cls.__new__(cls)


def _restore(node: Node, state: tuple) -> None:
    attrs, slots, feedback, deferred = state
    if attrs:
        node.__dict__.update(attrs)
    for name, value in slots.items():
        setattr(node, name, value)
    node._feedback = feedback
    for earlier, entries in deferred:  # the feedback of the ancestors written before it
        earlier._feedback = entries


class _NodeRules:
    """How a pickler writes nodes: flat, so that a long chain does not recurse.

    The first time a node is written, its ancestors not written yet go first, oldest
    first, each finding its parents already written; pickle's own recursion would go
    one level deeper per ancestor. Their feedback, which points at later nodes, is
    restored with the node rather than with them, so nothing written before the node
    refers to it. ``feedback=False`` leaves feedback out altogether.
    """

    def __init__(self, *, feedback: bool = True, stop: Mapping[int, Any] | None = None) -> None:
        self.feedback = feedback
        self.stop = stop or {}  # ids of nodes written as references: not walked
        self.seen: set[int] = set()
        self.deferred: set[int] = set()

    def reduce(self, obj: Node) -> tuple:
        earlier: list[Node] = []
        if id(obj) not in self.seen:
            self.seen.add(id(obj))
            stack = list(obj._parents)
            while stack:
                node = stack.pop()
                if id(node) not in self.seen and id(node) not in self.stop:
                    self.seen.add(id(node))
                    earlier.append(node)
                    stack.extend(node._parents)
            earlier.sort(key=_serial_of)
            self.deferred.update(map(id, earlier))
        state = obj.__getstate__()
        attrs, slots = state if isinstance(state, tuple) else (state, None)
        slots = dict(slots or {})
        feedback = slots.pop("_feedback", None)
        if not self.feedback or id(obj) in self.deferred:
            feedback = None
        deferred = tuple((n, n._feedback) for n in earlier if n._feedback) if self.feedback else ()
        args = (type(obj), earlier) if earlier else (type(obj),)
        return _node, args, (attrs, slots, feedback, deferred), None, None, _restore


@functools.cache
def _pickler_classes() -> tuple[type, type, type]:
    base = cloudpickle().Pickler

    class RulePickler(base):  # type: ignore[misc, valid-type]
        def __init__(self, file: io.BytesIO, nodes: _NodeRules | None = None) -> None:
            super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
            self.nodes = nodes or _NodeRules()

        def reducer_override(self, obj: Any) -> Any:
            cls = type(obj)
            if isinstance(obj, Node):
                return self.nodes.reduce(obj)
            factory = _LOCK_TYPES.get(cls)
            if factory is not None:
                return factory, ()
            if (
                isinstance(obj, BaseException)
                and cls.__module__ != "builtins"
                and cls.__reduce__ is BaseException.__reduce__  # the default: would call cls(*args)
            ):
                return _new_exception, (cls, obj.args), getattr(obj, "__dict__", None) or None
            return super().reducer_override(obj)

    class SendingPickler(RulePickler):
        """Notes every object it writes, for the receiver to number in the same order.

        Nodes go without their feedback: a worker runs the payload, it does not read it.
        """

        def __init__(self, file: io.BytesIO) -> None:
            super().__init__(file, _NodeRules(feedback=False))
            self.shared: dict[int, Any] = {}
            self.noting = True

        def persistent_id(self, obj: Any) -> None:
            if self.noting and type(obj) not in _PLAIN and obj is not _node:  # replies name _node
                self.shared.setdefault(id(obj), obj)
            return None

    class ReplyPickler(RulePickler):
        """Writes objects of the received payload as their numbers."""

        def __init__(self, file: io.BytesIO, index: dict[int, int]) -> None:
            super().__init__(file, _NodeRules(stop=index))
            self.index = index

        def persistent_id(self, obj: Any) -> int | None:
            return self.index.get(id(obj))

    return RulePickler, SendingPickler, ReplyPickler


class _by_value:
    """While open, cloudpickle sends ``modules`` (their functions and classes) by value."""

    def __init__(self, modules: Modules) -> None:
        self.names = [m.__name__ if isinstance(m, ModuleType) else m for m in modules]
        self.added: list[str] = []

    def __enter__(self) -> None:
        if not self.names:
            return
        cp = cloudpickle()
        _registry_lock.acquire()
        try:
            known = cp.list_registry_pickle_by_value()
            for name in self.names:
                if name not in known and name != "__main__":
                    cp.register_pickle_by_value(_module(name))
                    self.added.append(name)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        if not self.names:
            return
        cp = cloudpickle()
        try:
            for name in self.added:
                cp.unregister_pickle_by_value(_module(name))
        finally:
            self.added.clear()
            _registry_lock.release()


def _module(name: str) -> ModuleType:
    import sys

    module = sys.modules.get(name)
    if module is None:
        raise ValueError(f"cannot send module {name!r} by value: it is not imported")
    return module


def dumps(obj: Any, *, by_value: Modules = ()) -> bytes:
    """Pickle ``obj`` with cloudpickle and the rules above (see the module docstring)."""
    buf = io.BytesIO()
    with _by_value(by_value):
        _pickler_classes()[0](buf).dump(obj)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """Unpickle what ``dumps`` (or any pickler) wrote."""
    return pickle.loads(data)


# -- payloads and replies ---------------------------------------------------------------


class Sent:
    """A payload sent to other processes; opens their replies (see ``send``)."""

    def __init__(self, data: bytes, shared: list[Any]) -> None:
        self.data = data
        self._shared = shared
        self._parameters: dict[str, ParameterNode] | None = None
        self.strays: set[str] = set()  # names of received parameters that matched none here

    def open_reply(self, data: bytes, parameters: Mapping[str, ParameterNode] | None = None) -> Any:
        """Load a reply made by ``Received.reply`` and relink the nodes in it.

        Objects of the payload come back as the originals. Received parameters are
        replaced by the payload's parameters, or by ``parameters``, of the same name;
        the names of those that match none are added to ``strays``.
        """
        if self._parameters is None:
            self._parameters = {p.name: p for p in self._shared if isinstance(p, ParameterNode)}
        named = {**self._parameters, **parameters} if parameters else self._parameters
        loader = _ReplyUnpickler(io.BytesIO(data), self._shared)
        value = loader.load()
        value, strays = relink_nodes(value, loader.nodes, named)
        self.strays.update(strays)
        return value


class _ReplyUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, shared: list[Any]) -> None:
        super().__init__(file)
        self.shared = shared
        self.nodes: list[Node] = []

    def persistent_load(self, pid: Any) -> Any:
        return self.shared[pid]

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_node":  # every node made here was received
            return self._received
        return super().find_class(module, name)

    def _received(self, cls: type[Node], earlier: list[Node] | None = None) -> Node:
        node = cls.__new__(cls)
        self.nodes.append(node)
        return node


class Received:
    """A payload received from another process (``value``); pickles replies to it."""

    def __init__(self, value: Any, shared: list[Any]) -> None:
        self.value = value
        self._shared = shared  # kept alive: the numbering is by id
        self._index = {id(obj): i for i, obj in enumerate(shared)}

    def holds(self, obj: Any) -> bool:
        """Whether ``obj`` is an object of the payload (a reply carries it as the sender's own)."""
        return id(obj) in self._index

    def find(self, cls: type[T]) -> list[T]:
        """The payload's objects that are instances of ``cls``, in writing order."""
        return [obj for obj in self._shared if isinstance(obj, cls)]

    def reply(self, obj: Any, *, by_value: Modules = ()) -> bytes:
        """Pickle ``obj`` for the sender: objects of the payload go back as their numbers."""
        buf = io.BytesIO()
        with _by_value(by_value):
            _pickler_classes()[2](buf, self._index).dump(obj)
        return buf.getvalue()


def send(obj: Any, *, by_value: Modules = ()) -> Sent:
    """Pickle a payload (``Sent.data``) whose objects replies can refer back to.

    The objects written are numbered in writing order, and the numbering is written
    after the payload (as back-references, so it costs little), so that the receiver
    numbers its copies the same way.
    """
    buf = io.BytesIO()
    pickler = _pickler_classes()[1](buf)
    with _by_value(by_value):
        pickler.dump(obj)
        pickler.noting = False
        shared = list(pickler.shared.values())
        pickler.dump(shared)
    return Sent(buf.getvalue(), shared)


def receive(data: bytes) -> Received:
    """Load a payload made by ``send``."""
    loader = pickle.Unpickler(io.BytesIO(data))
    value = loader.load()
    return Received(value, loader.load())


def _serial_of(node: Node) -> int:
    return node._serial


__all__ = ["Received", "Sent", "cloudpickle", "dumps", "loads", "receive", "relink", "send"]
