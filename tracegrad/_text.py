"""Text shown to people and models: one truncation rule and one way to show a value.

Everything that cuts a long text (prompts, repair turns, reports, pictures) uses
``truncate``, so a reader always sees the same marker saying how much is missing.
"""

from __future__ import annotations

from typing import Any

#: The fewest characters a truncated text keeps (head and tail together).
MIN_KEEP_CHARS = 48


def marker(cut: int) -> str:
    """The visible marker put where ``cut`` characters were removed."""
    return f"…[truncated {cut} chars]…"


def truncate(text: str, max_chars: int | None) -> str:
    """``text`` cut to about ``max_chars`` characters, keeping its head and tail.

    Two thirds of the kept characters come from the head, one third from the tail;
    the marker in between says how many characters are missing. Short texts are
    returned unchanged.
    """
    if max_chars is None or len(text) <= max_chars:
        return text
    keep = max(max_chars, MIN_KEEP_CHARS)
    cut = len(text) - keep
    if cut <= len(marker(cut)):  # cutting would not make it shorter
        return text
    head = keep * 2 // 3
    tail = keep - head
    return text[:head] + marker(cut) + text[len(text) - tail :]


def truncated_length(length: int, cap: int | None) -> int:
    """The length ``truncate`` gives a text of ``length`` characters under ``cap``."""
    if cap is None or length <= cap:
        return length
    keep = max(cap, MIN_KEEP_CHARS)
    cut = length - keep
    mark = len(marker(cut))
    return length if cut <= mark else keep + mark


def literal(value: Any) -> str:
    """``repr`` of a value, never raising (a broken ``__repr__`` is reported instead).

    Arrays (JAX, NumPy) are shown as nested lists, the form a model can answer in;
    their dtype and shape are part of the parameter's kind.
    """
    try:
        if hasattr(value, "shape") and hasattr(value, "dtype") and callable(getattr(value, "tolist", None)):
            return repr(value.tolist())
        return repr(value)
    except Exception as exc:  # a user object's __repr__ may fail; a prompt or report must not
        return f"<{type(value).__name__} object; repr failed: {type(exc).__name__}>"
