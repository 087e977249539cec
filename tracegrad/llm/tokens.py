"""Token budgets for prompts: counting tokens cheaply, and truncating values visibly.

Rendering runs on every ``step()``, so the default counter is an estimate from the
length of the text (no tokenizer load, no model lookup). Truncation keeps the head and
the tail of a value and says how much was cut, so a model knows that it sees a part.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

TokenCounter = Callable[[str], int]

#: Characters per token assumed by the estimate. English prose averages about four;
#: code, numbers and JSON run closer to three, so three keeps a safety margin.
CHARS_PER_TOKEN = 3.0
#: The fewest characters a truncated value keeps (head and tail together).
MIN_KEEP_CHARS = 48


def estimate_tokens(text: str) -> int:
    """A fast upper estimate of the number of tokens in ``text`` (chars / 3)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def litellm_counter(model: str) -> TokenCounter:
    """A counter using the model's own tokenizer through litellm (slower, exact)."""
    from tracegrad.llm.litellm_transport import import_litellm

    litellm = import_litellm()

    def count(text: str) -> int:
        return int(litellm.token_counter(model=model, text=text))

    return count


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


def cap_for(lengths: Sequence[int], target: int) -> int | None:
    """The largest per-value cap under which ``lengths`` total at most ``target`` characters.

    Water-filling over the sorted lengths (every value longer than the cap is cut to
    it). Returns None when no cap is needed, and ``MIN_KEEP_CHARS`` when even that is
    not enough.
    """
    if sum(lengths) <= target:
        return None
    ordered = sorted(lengths)
    prefix = [0]
    for n in ordered:
        prefix.append(prefix[-1] + n)
    overhead = len(marker(10**6))  # markers are about this long

    def total(cap: int) -> int:
        i = bisect.bisect_right(ordered, cap)
        return prefix[i] + (len(ordered) - i) * (cap + overhead)

    low, high = MIN_KEEP_CHARS, ordered[-1]
    if total(low) > target:
        return MIN_KEEP_CHARS
    while low < high:  # largest cap with total(cap) <= target
        mid = (low + high + 1) // 2
        if total(mid) <= target:
            low = mid
        else:
            high = mid - 1
    return low
