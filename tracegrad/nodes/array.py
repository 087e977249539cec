"""The ``Array`` kind: a numeric JAX array parameter with a fixed shape and dtype.

``tg.node(jnp.zeros(3), trainable=True)`` infers it (``Array.like``). Every new value
is converted with ``jnp.asarray`` (lists and NumPy arrays are accepted), must keep the
declared shape, may change dtype only within its family (integers may become a float
array's values; floats may not become an integer array's), is cast to the declared
dtype, and must be finite (and within ``[low, high]`` when bounds are given). JAX is
imported inside the methods only, so ``import tracegrad`` never imports it.

``kind_dataclass``, the declaration every kind uses (this one and those of
``tracegrad.nodes.kinds``, which imports this module), is here too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, ValidationError
from pydantic.dataclasses import dataclass

from tracegrad.errors import InvalidKindError, InvalidValueError
from tracegrad.trace.kind import Kind, check_bounds, describe_bounds

K = TypeVar("K", bound=type)
_KIND_CONFIG = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")


def kind_dataclass(cls: K) -> K:
    """Declare a kind: a frozen pydantic dataclass whose constructor raises
    ``InvalidKindError`` (one sentence naming the kind and the argument) for a bad
    argument, an unknown one or a failed check in ``__post_init__``."""
    kind = dataclass(config=_KIND_CONFIG)(cls)
    init = kind.__init__
    fields = tuple(f.name for f in dataclasses.fields(kind))

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ValidationError as exc:
            reasons = "; ".join(_explain(e, kind.__name__, fields) for e in exc.errors())
            raise InvalidKindError(f"{kind.__name__}: {reasons}") from None
        except InvalidKindError as exc:  # raised as a TypeError: pydantic lets it through
            raise InvalidKindError(f"{kind.__name__}: {exc}") from None

    kind.__init__ = __init__
    return kind


def _explain(error: Any, kind: str, fields: tuple[str, ...]) -> str:
    """One pydantic error about a kind's arguments, in words naming the argument."""
    loc = error.get("loc") or ()
    where = loc[0] if loc else None
    if isinstance(where, int):  # a positional argument: named by the field at its position
        if where >= len(fields):
            return f"takes at most {len(fields)} positional arguments ({', '.join(fields)})"
        where = fields[where]
    kind_of = error.get("type")
    if kind_of == "value_error":  # a check of __post_init__
        cause = (error.get("ctx") or {}).get("error")
        return str(cause) if cause is not None else error["msg"].removeprefix("Value error, ")
    if kind_of == "missing":
        return f"the argument {where!r} is required"
    if kind_of == "unexpected_keyword_argument":
        return f"there is no argument {where!r} (the arguments are {', '.join(fields)})"
    expected, _, detail = error["msg"].removeprefix("Input should be ").partition(", ")
    given = error.get("input")
    if kind_of == "tuple_type":
        expected = "a tuple or a list"
        detail = f"for a single item write ({given!r},)" if isinstance(given, str) else ""
    return f"{where} should be {expected}, not {given!r:.60}" + (f" ({detail})" if detail else "")


def _family(dtype: Any) -> str:
    import jax.numpy as jnp

    if jnp.issubdtype(dtype, jnp.bool_):
        return "bool"
    if jnp.issubdtype(dtype, jnp.integer):
        return "integer"
    if jnp.issubdtype(dtype, jnp.floating):
        return "float"
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "complex"
    return "other"


# Which value families each declared family accepts (the value is then cast).
_ACCEPTS = {
    "bool": {"bool"},
    "integer": {"integer"},
    "float": {"integer", "float"},
    "complex": {"integer", "float", "complex"},
}


@kind_dataclass
class Array(Kind):
    """A numeric array of a fixed ``shape`` and ``dtype`` (a dtype name, e.g. ``"float32"``).

    ``shape=None`` or ``dtype=None`` leave that property free. ``low`` / ``high`` bound
    every element; the JAX optimizer projects (clips) its updates into them.
    """

    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    low: float | None = None
    high: float | None = None
    name: ClassVar[str] = "array"

    def __post_init__(self) -> None:
        check_bounds(self.low, self.high)
        if self.shape is not None and any(d < 0 for d in self.shape):
            raise InvalidKindError(f"shape must have no negative dimension, not {self.shape}")
        if self.dtype is not None:
            import jax.numpy as jnp

            try:
                dtype = jnp.dtype(self.dtype)
            except TypeError:
                raise InvalidKindError(f"dtype {self.dtype!r} is not the name of a dtype") from None
            if _family(dtype) == "other":
                raise InvalidKindError(f"dtype must be numeric, not {self.dtype!r}")

    @classmethod
    def like(cls, value: Any, *, low: float | None = None, high: float | None = None) -> Array:
        """The array kind with ``value``'s shape and dtype (after ``jnp.asarray``)."""
        arr = _as_array(value)
        return cls(shape=tuple(int(d) for d in arr.shape), dtype=str(arr.dtype), low=low, high=high)

    @property
    def target_dtype(self) -> Any:
        """The dtype values are stored in (canonical for the current JAX precision)."""
        if self.dtype is None:
            return None
        import jax
        import jax.numpy as jnp

        return jax.dtypes.canonicalize_dtype(jnp.dtype(self.dtype))

    def validate(self, value: Any) -> Any:
        import jax.numpy as jnp

        arr = _as_array(value)
        family = _family(arr.dtype)
        target = self.target_dtype
        if target is not None and arr.dtype != target:
            wanted = _family(target)
            if family not in _ACCEPTS[wanted]:
                raise InvalidValueError(
                    f"expected an array of {self.dtype} ({wanted} values), got {arr.dtype} ({family} values)"
                )
            arr = arr.astype(target)
            family = wanted
        elif family == "other":
            raise InvalidValueError(f"expected a numeric array, got dtype {arr.dtype}")
        if self.shape is not None and tuple(arr.shape) != tuple(self.shape):
            raise InvalidValueError(f"expected an array of shape {tuple(self.shape)}, got shape {tuple(arr.shape)}")
        if family in ("float", "complex"):
            finite = jnp.isfinite(arr)
            if not bool(jnp.all(finite)):
                bad = int(arr.size - jnp.sum(finite))
                raise InvalidValueError(
                    f"the array has {bad} non-finite value(s) (NaN or infinity); all must be finite"
                )
        if self.low is not None and bool(jnp.any(arr < self.low)):
            raise InvalidValueError(f"every element must be >= {self.low}; the smallest is {float(jnp.min(arr))}")
        if self.high is not None and bool(jnp.any(arr > self.high)):
            raise InvalidValueError(f"every element must be <= {self.high}; the largest is {float(jnp.max(arr))}")
        if getattr(arr, "weak_type", False):  # a weak type would change after the first update
            arr = arr.astype(arr.dtype)
        return arr

    def describe(self) -> str:
        dtype = self.dtype or "any dtype"
        shape = "any shape" if self.shape is None else f"shape {tuple(self.shape)}"
        bounds = describe_bounds(self.low, self.high)
        return f"array of {dtype}, {shape}" + (f", every element{bounds}" if bounds else "")

    def json_schema(self) -> dict[str, Any]:
        """Nested lists of numbers, as deep as the shape (any depth without one)."""
        item: dict[str, Any] = {"type": "number"}
        for k, v in (("minimum", self.low), ("maximum", self.high)):
            if v is not None:
                item[k] = v
        if self.dtype is not None and "complex" in self.dtype:
            return {}
        if self.shape is None:
            return {"type": ["array", "number"]}
        for size in reversed(self.shape):
            item = {"type": "array", "items": item, "minItems": size, "maxItems": size}
        return item

    def to_json(self, value: Any) -> Any:
        return array_to_json(value)

    def from_json(self, data: Any) -> Any:
        if not isinstance(data, dict):  # a bare (nested) list
            return data
        try:
            return array_from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidValueError(f"not a saved array ({type(exc).__name__}: {exc})") from None


def array_to_json(value: Any) -> dict[str, Any]:
    """An array as JSON data: dtype, shape and values (complex ones as real and imag)."""
    import numpy as np

    arr = np.asarray(value)
    data: Any = {"real": arr.real.tolist(), "imag": arr.imag.tolist()} if np.iscomplexobj(arr) else arr.tolist()
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": data}


def array_from_json(data: dict[str, Any]) -> Any:
    """The JAX array ``array_to_json`` describes (raises KeyError/TypeError/ValueError)."""
    import jax.numpy as jnp
    import numpy as np

    dtype = jnp.dtype(data["dtype"])
    values = data["data"]
    if isinstance(values, dict):
        values = np.asarray(values["real"]) + 1j * np.asarray(values["imag"])
    return jnp.asarray(np.asarray(values, dtype=dtype).reshape(tuple(data["shape"])))


def _as_array(value: Any) -> Any:
    """``jnp.asarray(value)``, refusing mappings, None and text that is not a JSON list."""
    import jax.numpy as jnp

    if isinstance(value, str) and value.strip().startswith("["):  # e.g. an LLM's suggestion
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InvalidValueError(f"expected an array of numbers, got unparseable text {value!r:.80}") from None
    if value is None or isinstance(value, (str, bytes, dict)):
        raise InvalidValueError(f"expected an array of numbers, got {type(value).__name__} {value!r:.80}")
    import jax
    import numpy as np

    if isinstance(value, jax.Array):
        return value
    try:
        arr = np.asarray(value)
        if arr.dtype.kind in "OSUMm":  # objects, text, dates
            raise TypeError(f"its elements are {arr.dtype} values, not numbers")
        return jnp.asarray(arr)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidValueError(f"expected an array of numbers, got {type(value).__name__}: {exc}") from None


__all__ = ["Array", "array_from_json", "array_to_json", "kind_dataclass"]
