"""What an LLM optimizer remembers between steps, and how it is checked when loaded.

``Memory`` entries are the (values, feedback) pairs a prompt's #History shows; the
repeat count says how many applied proposals in a row came from one exact prompt (a
step that repeats it is a new draw). Both are saved in the optimizer's state and
checked before a load changes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tracegrad._text import literal
from tracegrad.errors import TracegradError


@dataclass
class Memory:
    """The values of the variables at one step and the feedback they received."""

    values: dict[str, Any]
    feedback: str

    def render(self) -> str:
        values = ", ".join(f"{k}={literal(v)}" for k, v in self.values.items())
        return f"{values}\nfeedback: {self.feedback}"


def checked_memory(items: Any) -> list[Memory]:
    """The memory entries of a saved state (a list of ``values``/``feedback`` mappings), checked."""
    if not isinstance(items, list):
        raise TracegradError(f"memory must be a list of entries, got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        values = item.get("values") if isinstance(item, Mapping) else None
        feedback = item.get("feedback") if isinstance(item, Mapping) else None
        if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
            raise TracegradError(f"memory entry {i} needs 'values', a mapping of names to values: {item!r}")
        if not isinstance(feedback, str):
            raise TracegradError(f"memory entry {i} needs 'feedback', a string: {item!r}")
        out.append(Memory(dict(values), feedback))
    return out


def checked_repeat(value: Any) -> tuple[str, int]:
    """The repeat count from its saved form, ``[prompt digest, count]``."""
    if not (
        isinstance(value, list | tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and value[1] >= 0
    ):
        raise TracegradError(f"repeat must be [prompt digest, count], got {value!r}")
    return value[0], value[1]
