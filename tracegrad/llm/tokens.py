"""Counting tokens without a tokenizer: the one estimate used wherever no exact count is.

Prompt rendering runs on every optimizer step, so it counts with this estimate (no
tokenizer load, no model lookup); transports that know the model's tokenizer count
exactly (see ``Transport.count_tokens``) and fall back to it otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

TokenCounter = Callable[[str], int]

#: Characters per token assumed by the estimate. English prose averages about four;
#: code, numbers and JSON run closer to three, so three keeps a safety margin.
CHARS_PER_TOKEN = 3.0


def estimate_tokens(text: str) -> int:
    """A fast upper estimate of the number of tokens in ``text`` (chars / 3)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def tokens_for_chars(chars: int) -> int:
    """The estimate for a text of ``chars`` characters."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def message_text(content: str | list[dict[str, Any]]) -> str:
    """A text, or the contents of chat messages joined, for counting."""
    if isinstance(content, str):
        return content
    return "".join(str(m.get("content") or "") for m in content)
