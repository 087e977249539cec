"""Text diffs of parameter values (difflib), shared by the run report and ``tracegrad diff``.

Texts and code are compared line by line as they are; any other value (a number, a
choice, a structure, an array) as its indented JSON, so a change in a nested field shows
as the one line that changed.
"""

from __future__ import annotations

import difflib
import json
from typing import Any


def value_text(value: Any) -> str:
    """The text a value is shown and compared as."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def text_diff(old: Any, new: Any, *, old_label: str = "old", new_label: str = "new", context: int = 3) -> list[str]:
    """The unified diff of two values' texts, one line per item, without line ends
    (empty when the texts are equal)."""
    a, b = value_text(old).splitlines(), value_text(new).splitlines()
    return list(difflib.unified_diff(a, b, fromfile=old_label, tofile=new_label, n=context, lineterm=""))


def changed_names(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The parameter names whose values differ (or that only one side has), in order."""
    names = list(old) + [n for n in new if n not in old]
    return [n for n in names if n not in old or n not in new or old[n] != new[n]]


__all__ = ["changed_names", "text_diff", "value_text"]
