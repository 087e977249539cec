"""Parameter kinds: what values a trainable parameter may take, checked with pydantic.

A kind validates (and coerces, e.g. ``"0.5"`` to ``0.5`` for a number) every value a
parameter is given, describes its constraints in words for optimizers, and converts
values to and from JSON for checkpoints. An invalid value raises
``InvalidValueError`` with a reason an optimizer can show to a model.

Every kind derives from ``tracegrad.trace.kind.Kind``, the interface the engine's
parameters use (re-exported here); the ``Array`` kind is in ``tracegrad.nodes.array``.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import textwrap
from functools import cached_property, lru_cache
from typing import Annotated, Any, ClassVar

from pydantic import Field, TypeAdapter, ValidationError

from tracegrad.errors import InvalidKindError, InvalidValueError
from tracegrad.nodes.array import Array, kind_dataclass
from tracegrad.trace.kind import Kind, check_bounds, describe_bounds


@lru_cache(maxsize=256)
def _float_adapter(low: float | None, high: float | None) -> TypeAdapter:
    return TypeAdapter(Annotated[float, Field(ge=low, le=high, allow_inf_nan=False)])


@lru_cache(maxsize=256)
def _int_adapter(low: int | None, high: int | None) -> TypeAdapter:
    return TypeAdapter(Annotated[int, Field(ge=low, le=high)])


def _bounds_schema(low: float | None, high: float | None) -> dict[str, float]:
    return {k: v for k, v in (("minimum", low), ("maximum", high)) if v is not None}


def _check(adapter: TypeAdapter, value: Any, expected: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        detail = "; ".join(e["msg"] for e in exc.errors())
        raise InvalidValueError(f"expected {expected}, got {value!r:.80}: {detail}") from None


@kind_dataclass
class Text(Kind):
    """A string, e.g. a prompt; optionally with a maximum length in characters."""

    max_length: int | None = None
    name: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        if self.max_length is not None and self.max_length < 1:
            raise InvalidKindError(f"max_length must be at least 1 or None, not {self.max_length}")

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidValueError(f"expected text (a string), got {type(value).__name__} {value!r:.80}")
        if self.max_length is not None and len(value) > self.max_length:
            raise InvalidValueError(f"text is {len(value)} characters long; at most {self.max_length} allowed")
        return value

    def describe(self) -> str:
        return "text" + (f" (at most {self.max_length} characters)" if self.max_length else "")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", **({"maxLength": self.max_length} if self.max_length else {})}


@kind_dataclass
class Number(Kind):
    """A finite float, optionally within ``[low, high]``."""

    low: float | None = None
    high: float | None = None
    name: ClassVar[str] = "number"

    def __post_init__(self) -> None:
        check_bounds(self.low, self.high)

    @property
    def _adapter(self) -> TypeAdapter:
        return _float_adapter(self.low, self.high)

    def validate(self, value: Any) -> float:
        if isinstance(value, bool):
            raise InvalidValueError(f"expected a number, got the boolean {value}")
        return _check(self._adapter, value, "a number" + describe_bounds(self.low, self.high))

    def describe(self) -> str:
        return "number" + describe_bounds(self.low, self.high)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "number", **_bounds_schema(self.low, self.high)}


@kind_dataclass
class Integer(Kind):
    """An int, optionally within ``[low, high]``; ``3.0`` and ``"3"`` are accepted as 3."""

    low: int | None = None
    high: int | None = None
    name: ClassVar[str] = "integer"

    def __post_init__(self) -> None:
        check_bounds(self.low, self.high)

    @property
    def _adapter(self) -> TypeAdapter:
        return _int_adapter(self.low, self.high)

    def validate(self, value: Any) -> int:
        if isinstance(value, bool):
            raise InvalidValueError(f"expected an integer, got the boolean {value}")
        return _check(self._adapter, value, "an integer" + describe_bounds(self.low, self.high))

    def describe(self) -> str:
        return "integer" + describe_bounds(self.low, self.high)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", **_bounds_schema(self.low, self.high)}


@kind_dataclass
class Choice(Kind):
    """One of a fixed set of options; a string naming an option selects it."""

    options: tuple[Any, ...]
    name: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        if not self.options:
            raise InvalidKindError("options must hold at least one option")

    def validate(self, value: Any) -> Any:
        for option in self.options:
            if type(option) is type(value) and option == value:
                return option
            if isinstance(option, tuple) and isinstance(value, list) and list(option) == value:
                return option  # a tuple option that went through JSON
        if isinstance(value, str):
            matches = [o for o in self.options if str(o) == value.strip() or repr(o) == value.strip()]
            if len(matches) == 1:
                return matches[0]
        raise InvalidValueError(f"{value!r:.80} is not one of the options {list(self.options)!r}")

    def describe(self) -> str:
        return f"choice, one of {list(self.options)!r}"

    def json_schema(self) -> dict[str, Any]:
        options = [self.to_json(o) for o in self.options]
        try:
            json.dumps(options, allow_nan=False)
        except (TypeError, ValueError):  # options without a JSON form: named by their text
            return {"enum": [str(o) for o in self.options]}
        return {"enum": options}


@kind_dataclass
class Structure(Kind):
    """JSON-like data (dicts, lists, strings, numbers, booleans, null).

    ``schema`` optionally constrains it with any type pydantic understands (a
    ``BaseModel``, ``list[int]``, a ``TypedDict`` ...); values are stored as JSON data.
    A string holding JSON is parsed when the schema does not itself expect a string.
    """

    schema: Any = None
    name: ClassVar[str] = "json"

    def __post_init__(self) -> None:
        try:
            _ = self._adapter  # built now: a schema pydantic cannot use is refused here
        except Exception as exc:
            raise InvalidKindError(
                f"schema must be a type to validate data with (a BaseModel, list[int] ...), not {self.schema!r:.60}"
            ) from exc

    @cached_property
    def _adapter(self) -> TypeAdapter | None:
        return None if self.schema is None else TypeAdapter(self.schema)

    def validate(self, value: Any) -> Any:
        if self._adapter is not None:
            try:
                checked = self._adapter.validate_python(value)
            except ValidationError:
                if not isinstance(value, str):
                    raise InvalidValueError(self._mismatch(value)) from None
                try:  # a model may answer with the data serialized as JSON text
                    checked = self._adapter.validate_json(value)
                except ValidationError:
                    raise InvalidValueError(self._mismatch(value)) from None
            value = self._adapter.dump_python(checked, mode="json")
        try:
            return json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"expected JSON-like data: {exc}") from None

    def _mismatch(self, value: Any) -> str:
        try:
            self._adapter.validate_python(value)  # type: ignore[union-attr]
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
            return f"expected data matching the schema, got {value!r:.80}: {detail}"
        return f"expected data matching the schema, got {value!r:.80}"

    def describe(self) -> str:
        if self._adapter is None:
            return "json"
        return f"json matching the schema {json.dumps(self._adapter.json_schema(), separators=(',', ':'))}"

    def json_schema(self) -> dict[str, Any]:
        if self._adapter is None:
            return {}
        try:
            return self._adapter.json_schema()
        except Exception:  # a type without a JSON schema: any JSON, validated on receipt
            return {}


@kind_dataclass
class Code(Kind):
    """Python source of a function named ``function`` with a fixed signature.

    ``signature`` lists ``(parameter name, kind, has default)`` triples; the source
    must parse and define ``function`` with exactly that signature (helpers and
    imports around it are allowed).
    """

    function: str
    signature: tuple[tuple[str, str, bool], ...]
    is_async: bool = False
    name: ClassVar[str] = "code"

    @classmethod
    def of(cls, fn: Any) -> Code:
        """The code kind that ``fn``'s own source satisfies."""
        params = inspect.signature(fn).parameters.values()
        signature = tuple((p.name, p.kind.name, p.default is not p.empty) for p in params)
        return cls(fn.__name__, signature, inspect.iscoroutinefunction(fn))

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidValueError(f"expected Python source code as a string, got {type(value).__name__}")
        source = textwrap.dedent(value).strip("\n") + "\n"
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise InvalidValueError(f"the code does not parse: {exc.msg} (line {exc.lineno})") from None
        defs = [
            n for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == self.function
        ]  # fmt: skip
        if not defs:
            raise InvalidValueError(f"the code must define a top-level function named {self.function!r}")
        if isinstance(defs[-1], ast.AsyncFunctionDef) != self.is_async:
            wanted = "async def" if self.is_async else "def (not async def)"
            raise InvalidValueError(f"{self.function!r} must stay a {wanted} function")
        found = _ast_signature(defs[-1].args)
        if found != self.signature:
            raise InvalidValueError(
                f"the signature of {self.function!r} must stay ({self.format_signature(self.signature)}), "
                f"got ({self.format_signature(found)})"
            )
        return source

    @staticmethod
    def format_signature(signature: tuple[tuple[str, str, bool], ...]) -> str:
        parts = []
        for name, kind, has_default in signature:
            prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
            parts.append(prefix + name + ("=..." if has_default else ""))
        return ", ".join(parts)

    def describe(self) -> str:
        keyword = "async def" if self.is_async else "def"
        return f"code: Python source of `{keyword} {self.function}({self.format_signature(self.signature)})`"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string"}


def _ast_signature(args: ast.arguments) -> tuple[tuple[str, str, bool], ...]:
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    out = [
        (a.arg, "POSITIONAL_ONLY" if i < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD", i >= first_default)
        for i, a in enumerate(positional)
    ]
    if args.vararg:
        out.append((args.vararg.arg, "VAR_POSITIONAL", False))
    out += [(a.arg, "KEYWORD_ONLY", d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        out.append((args.kwarg.arg, "VAR_KEYWORD", False))
    return tuple(out)


_BY_NAME: dict[str, type[Kind]] = {k.name: k for k in (Text, Number, Integer, Structure)}


def resolve_kind(kind: Kind | str | None, value: Any) -> Kind:
    """The kind to use for ``value``: the one given (by object or name), else inferred."""
    if isinstance(kind, Kind):
        return kind
    if isinstance(kind, str):
        if kind in _BY_NAME:
            return _BY_NAME[kind]()
        if kind in ("choice", "code"):
            raise InvalidKindError(f"kind {kind!r} needs arguments: pass tracegrad.{kind.capitalize()}(...)")
        if kind == "array":
            return Array.like(value)
        raise InvalidKindError(f"unknown kind {kind!r}; known: {sorted([*_BY_NAME, 'choice', 'code', 'array'])}")
    if kind is not None:
        raise InvalidKindError(f"kind must be a Kind or a kind name, got {type(kind).__name__}")
    return infer_kind(value)


def infer_kind(value: Any) -> Kind:
    """The natural kind of a value: bool -> choice, int, float, str, JSON data, arrays."""
    if isinstance(value, bool):
        return Choice((False, True))
    if isinstance(value, int):
        return Integer()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(f"a number parameter must be finite, got {value}")
        return Number()
    if isinstance(value, str):
        return Text()
    if isinstance(value, (dict, list)):
        return Structure()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return Array.like(value)
    raise InvalidKindError(
        f"cannot infer a parameter kind for a {type(value).__name__}; pass kind= "
        "(tracegrad.Text, Number, Integer, Choice, Structure, Code)"
    )


__all__ = ["Choice", "Code", "Integer", "Kind", "Number", "Structure", "Text", "infer_kind", "resolve_kind"]
