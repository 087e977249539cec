"""Containers of parameters: ``Module`` and the ``@model`` class decorator.

A module's parameters are found, like PyTorch's, by walking its attributes: parameter
nodes, nested modules, containers of them (lists, tuples, dicts, dataclasses), and
trainable bundled functions and methods (their code).

A parameter has one name: its attribute path (``"planner.prompt"``, ``"tools.0"``,
``"solve.code"``), used everywhere -- ``state_dict()``, checkpoints, optimizers'
prompts and reports, pictures, JAX. Assigning an attribute names the parameters it
holds after their paths in this module; when the module itself becomes an attribute of
another, the enclosing module's longer paths take over. So two sub-modules that each
have a ``prompt`` give ``first.prompt`` and ``second.prompt``. A path replaces a name
given with ``name=``: inside a module, the path is the name.

A parameter used as a dict *key* is found too: its path is the dict's path plus
``<key i>``, ``i`` being the key's position in the dict's order (``options.<key 0>``),
so it stays the same as long as the dict is built in the same order. (The engine's
container rule looks into dict values only; keys matter here because a module's
parameters are whatever it holds.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, TypeVar

from tracegrad._io import atomic_write_json, read_json
from tracegrad.errors import InvalidValueError, TracegradError
from tracegrad.nodes.bundle import _INSTANCE_KEY, BoundBundle, Bundle
from tracegrad.trace import ParameterNode, assign
from tracegrad.trace.containers import children

CHECKPOINT_FORMAT = "tracegrad.module"
CHECKPOINT_VERSION = 1
T = TypeVar("T")


class Module:
    """Base class for objects that hold parameters.

    Parameters are named by their attribute paths (see the module docstring), so
    optimizers and reports speak of ``planner.prompt`` rather than ``param_12``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if isinstance(value, _HOLDERS) or children(value):
            for _ in self.named_parameters():  # names what the new attribute holds
                pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        forward = getattr(self, "forward", None)
        if forward is None:
            raise TypeError(f"{type(self).__name__} defines no forward() to call")
        return forward(*args, **kwargs)

    def named_parameters(self) -> Iterator[tuple[str, ParameterNode]]:
        """``(path, parameter)`` pairs, each parameter once, in attribute order.

        A parameter found here is named by its path, unless an enclosing module has
        already named it by a longer path ending in this one.
        """
        seen: set[int] = set()
        for path, param in _walk_module(self, "", set()):
            if id(param) not in seen:
                seen.add(id(param))
                _claim(param, path)
                yield path, param

    def parameters(self) -> list[ParameterNode]:
        """Every trainable parameter of this module and the modules inside it."""
        return [p for _, p in self.named_parameters()]

    def state_dict(self) -> dict[str, Any]:
        """Parameter values by path, as JSON-compatible data."""
        return {path: p.kind.to_json(p.value) for path, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Set parameters from ``state``: all of them, or (on any invalid value) none.

        With ``strict``, missing and unexpected paths are errors too.
        """
        if not isinstance(state, dict):
            raise TracegradError(f"a state dict maps parameter paths to values, not a {type(state).__name__}")
        params = dict(self.named_parameters())
        if strict:
            missing = sorted(params.keys() - state.keys())
            unexpected = sorted(state.keys() - params.keys())
            if missing or unexpected:
                raise TracegradError(
                    f"state does not match {type(self).__name__}: missing {missing}, unexpected {unexpected}"
                )
        staged = {}
        for path, data in state.items():
            if path not in params:
                continue
            try:
                staged[params[path]] = params[path].kind.from_json(data)
            except InvalidValueError as exc:
                raise InvalidValueError(" ".join(exc.reason.split()), name=path) from None  # one line
        assign(staged)

    def save(self, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> None:
        """Write the parameters (and ``extra`` JSON data, e.g. optimizer state) atomically."""
        cls = type(self)
        atomic_write_json(
            path,
            {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "module": f"{cls.__module__}.{cls.__qualname__}",
                "parameters": self.state_dict(),
                "extra": extra or {},
            },
        )

    def load(self: T, path: str | os.PathLike[str], *, strict: bool = True) -> T:
        """Restore parameters saved by ``save`` into this (e.g. freshly built) module."""
        payload = read_checkpoint(path)
        self.load_state_dict(payload["parameters"], strict=strict)  # type: ignore[attr-defined]
        return self


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The contents of a module checkpoint (parameters and extra data), every field checked.

    A file that is not one (not UTF-8 JSON, another format, a newer version, a field of
    the wrong type) raises :class:`TracegradError` with one sentence naming the file.
    """
    payload = read_json(path)
    where = os.fspath(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise TracegradError(f"{where!r} is not a tracegrad module checkpoint")
    version = payload.get("version")
    if type(version) is not int or version < 1:
        raise TracegradError(f"{where!r} has no valid checkpoint version (a positive integer), got {version!r}")
    if version > CHECKPOINT_VERSION:
        raise TracegradError(f"{where!r} was written by a newer tracegrad (version {version})")
    wrong = next((k for k, t in _FIELDS.items() if k in payload and not isinstance(payload[k], t)), None)
    if "parameters" not in payload or wrong is not None:
        field = wrong or "parameters"
        raise TracegradError(
            f"{where!r} is not a valid module checkpoint: {field!r} must be {_FIELD_NAMES[field]}, "
            f"not {type(payload.get(field)).__name__}"
        )
    return {**payload, "extra": payload.get("extra", {})}


# The checked fields of a checkpoint: their types, and how they are named in errors.
_FIELDS: dict[str, Any] = {"parameters": dict, "extra": dict, "module": (str, type(None))}
_FIELD_NAMES = {"parameters": "an object of parameter values", "extra": "an object", "module": "a class name or null"}


def model(cls: type[T]) -> type[T]:
    """Class decorator: make ``cls`` a ``Module`` without changing its base classes by hand."""
    if issubclass(cls, Module):
        return cls
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls, Module), namespace)  # type: ignore[return-value]


_HOLDERS = (ParameterNode, Module, Bundle, BoundBundle)


def _claim(param: ParameterNode, path: str) -> None:
    """Name ``param`` by ``path`` unless it already has it, or a longer path that an
    enclosing module gave it (``planner.prompt`` is not shortened to ``prompt``)."""
    given = param.given_name
    if given != path and not (given is not None and given.endswith("." + path)):
        param.name = path


def _join(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def _walk_module(module: Any, prefix: str, visited: set[int]) -> Iterator[tuple[str, ParameterNode]]:
    if id(module) in visited:
        return
    visited.add(id(module))
    for attr, value in vars(module).items():
        if attr != _INSTANCE_KEY:
            yield from _walk_value(value, _join(prefix, attr), visited)
    cls = type(module)
    names = dict.fromkeys(name for klass in reversed(cls.__mro__) for name in vars(klass))
    for attr in names:
        member = getattr(cls, attr, None)
        if isinstance(member, Bundle) and member.trainable:
            param = member.code_parameter_for(module)
            if param is not None:
                yield _join(prefix, f"{attr}.code"), param


def _walk_value(value: Any, path: str, visited: set[int]) -> Iterator[tuple[str, ParameterNode]]:
    if isinstance(value, ParameterNode):
        yield path, value
    elif isinstance(value, Module):
        yield from _walk_module(value, path, visited)
    elif isinstance(value, (Bundle, BoundBundle)):
        if value.parameter is not None:
            yield f"{path}.code", value.parameter
    elif id(value) not in visited:
        items = children(value)
        if items:
            visited.add(id(value))
            for i, (key, item) in enumerate(items):
                if isinstance(value, dict):  # a key may hold parameters too
                    yield from _walk_value(key, _join(path, f"<key {i}>"), visited)
                yield from _walk_value(item, _join(path, key), visited)
