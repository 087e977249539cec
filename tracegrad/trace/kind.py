"""What a parameter's kind is: the base class of every kind.

A ``ParameterNode`` validates each value it is given with its kind. The kinds
themselves (text, numbers, choices, code, arrays ...) are defined on top of this class
in ``tracegrad.nodes``; the engine needs nothing but this interface.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from tracegrad.errors import InvalidKindError


class Kind:
    """Base of the parameter kinds: validation, a description, and a JSON form."""

    name: ClassVar[str] = "value"

    def validate(self, value: Any) -> Any:
        """Return the value to store (possibly coerced) or raise ``InvalidValueError``."""
        return value

    def describe(self) -> str:
        """The kind and its constraints, in words."""
        return self.name

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the values a model may suggest for this kind (``{}``: any JSON).

        Optimizers give it to models that decode under a schema, so that a suggested
        value has the right type and constraints; ``validate`` still has the last word.
        """
        return {}

    def to_json(self, value: Any) -> Any:
        """A JSON-compatible form of a valid value."""
        return value

    def from_json(self, data: Any) -> Any:
        """The inverse of ``to_json`` (the result is validated afterwards)."""
        return data


def describe_bounds(low: float | None, high: float | None) -> str:
    """``" in [low, high]"``, ``" >= low"``, ``" <= high"`` or ``""``: bounds in words."""
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def check_bounds(low: float | None, high: float | None) -> None:
    """Refuse NaN bounds and bounds in the wrong order (``InvalidKindError``: a kind's
    definition error, not a value's)."""
    for label, bound in (("low", low), ("high", high)):
        if bound is not None and math.isnan(bound):
            raise InvalidKindError(f"{label} must be a number or None, not NaN")
    if low is not None and high is not None and low > high:
        raise InvalidKindError(f"low ({low}) must not exceed high ({high})")


__all__ = ["Kind", "check_bounds", "describe_bounds"]
