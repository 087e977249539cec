"""Render a ``Problem`` as compact text within a token budget.

The layout reads as a small program with sections (``#Code``, ``#Variables``, ...): one
line per call (``y = f(x) ->1.5``, short results inline), one line per value
(``name=literal``), multi-line values (code, tracebacks) in a fenced block. Nothing is
repeated and empty sections are left out. (No space before a number: most tokenizers
spend a token on it.)

The inner steps of a traced call (``Entry.depth`` above 0) are indented under its
line, four spaces per level.

When the text would exceed the budget, values are truncated with a visible marker,
least useful first: intermediate values, then inputs, history, function
documentation, inner steps, code lines, outputs, variables and feedback, in that
order. Within a group the longest values are cut first (all down to one common
length). If that is still not enough, the text itself is cut in the middle, so the
budget always holds.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from tracegrad._text import MIN_KEEP_CHARS, marker, truncate, truncated_length
from tracegrad.llm.tokens import CHARS_PER_TOKEN, TokenCounter, estimate_tokens
from tracegrad.optimizers.llm.problem import Entry, Problem

#: Groups of values in the order they are truncated when the budget is short.
CUT_ORDER = (
    "intermediates",
    "inputs",
    "history",
    "functions",
    "inner",
    "code",
    "outputs",
    "variables",
    "feedback",
    "instruction",
)
#: Groups whose values may be left out, in this order, when truncation is not enough.
DROPPABLE = ("intermediates", "inputs", "history", "functions", "inner", "code", "outputs")
#: The indentation of an inner step per level of nesting.
INDENT = "    "
#: Intermediate values up to this many characters are shown on their code line
#: (``y = f(x) ->1.5``) instead of repeating the name under #Intermediates.
INLINE_CHARS = 48
#: Groups whose values are capped at ``value_tokens`` even when the budget is ample.
CAPPED = frozenset({"intermediates", "inputs", "history"})


@dataclass
class _Slot:
    """A value with the fixed text around it; only ``value`` may be truncated, and a
    slot of a group in ``DROPPABLE`` may be left out altogether."""

    group: str
    prefix: str
    value: str
    suffix: str = ""
    dropped: bool = False

    def length(self, cap: int | None) -> int:
        return len(self.prefix) + truncated_length(len(self.value), cap) + len(self.suffix) + 1


def _entry(group: str, entry: Entry) -> _Slot:
    comment = f"  # {entry.note}" if entry.note else ""
    if "\n" in entry.value:
        return _Slot(group, f"{entry.name} ={comment}\n```\n", entry.value, "\n```")
    return _Slot(group, f"{entry.name}=", entry.value, comment)


def _slots(problem: Problem, history: Sequence[str]) -> list[_Slot]:
    slots: list[_Slot] = []

    def section(title: str, items: list[_Slot]) -> None:
        if items:
            slots.append(_Slot("header", f"\n#{title}" if slots else f"#{title}", ""))
            slots.extend(items)

    section("Instruction", [_Slot("instruction", "", problem.instruction)] if problem.instruction else [])
    inline = {e.name: e.value for e in problem.intermediates if len(e.value) <= INLINE_CHARS and "\n" not in e.value}
    code = []
    for line in problem.code:
        comment = f"  # {line.note}" if line.note else ""
        group, indent = ("inner", INDENT * line.depth) if line.depth else ("code", "")
        if line.name in inline:  # a short intermediate value goes after its line
            code.append(_Slot(group, f"{indent}{line.value} ->", inline[line.name], comment))
        else:
            code.append(_Slot(group, indent, line.value, comment))
    # the functions' documentation does not change between steps: before the code, whose
    # results do, it stays in the prompt's reusable prefix
    section("Functions", [_Slot("functions", f"{e.name}: ", e.value) for e in problem.functions])
    section("Code", code)
    section("Variables", [_entry("variables", e) for e in problem.variables])
    section("Inputs", [_entry("inputs", e) for e in problem.inputs])
    section("Intermediates", [_entry("intermediates", e) for e in problem.intermediates if e.name not in inline])
    section("Outputs", [_entry("outputs", e) for e in problem.outputs])
    section("History", [_Slot("history", "", h) for h in history])
    if len(problem.feedback) == 1:
        section("Feedback", [_Slot("feedback", "", problem.feedback[0].value)])
    else:
        section("Feedback", [_Slot("feedback", f"{e.name}: ", e.value) for e in problem.feedback])
    return slots


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


def _omitted(count: int) -> str:
    return f"…[{count} more omitted]…"


def _join(slots: list[_Slot], caps: dict[str, int | None]) -> str:
    lines: list[str] = []
    run = 0
    for s in slots:
        if s.dropped:
            run += 1
            continue
        if run:
            lines.append(_omitted(run))
            run = 0
        lines.append(s.prefix + truncate(s.value, caps.get(s.group)) + s.suffix)
    if run:
        lines.append(_omitted(run))
    return "\n".join(lines)


def _length(slots: list[_Slot], caps: dict[str, int | None]) -> int:
    total = sum(s.length(caps.get(s.group)) for s in slots if not s.dropped)
    runs = sum(1 for a, b in zip([None, *slots], slots, strict=False) if b.dropped and not (a and a.dropped))
    return total + runs * (len(_omitted(10**4)) + 1)


def _fit(slots: list[_Slot], caps: dict[str, int | None], max_chars: int) -> None:
    """Lower the caps of the groups in ``CUT_ORDER`` until the text fits ``max_chars``;
    if that is not enough, leave out whole values (from the middle of each group)."""
    total = _length(slots, caps)
    for group in CUT_ORDER:
        if total <= max_chars:
            return
        lengths = [len(s.value) for s in slots if s.group == group and not s.dropped]
        if not lengths:
            continue
        current = caps.get(group)
        now = sum(truncated_length(n, current) for n in lengths)
        cap = cap_for(lengths, max(0, now - (total - max_chars)))
        if cap is not None and (current is None or cap < current):
            caps[group] = cap
            total = _length(slots, caps)
    for group in DROPPABLE:
        if total <= max_chars:
            return
        members = [s for s in slots if s.group == group and not s.dropped]
        middle = (len(members) - 1) / 2
        for _, slot in sorted(enumerate(members), key=lambda pair: abs(pair[0] - middle)):
            slot.dropped = True
            total -= slot.length(caps.get(group))
            if total + 2 * len(_omitted(10**4)) <= max_chars:
                break
        total = _length(slots, caps)


def render_problem(
    problem: Problem,
    *,
    history: Sequence[str] = (),
    budget_tokens: int | None = None,
    value_tokens: int | None = 600,
    counter: TokenCounter | None = None,
) -> str:
    """The problem as text of at most ``budget_tokens`` tokens (by ``counter``).

    ``value_tokens`` caps each intermediate value, input and history entry even when
    the budget is ample: a long intermediate rarely helps as much as it costs.
    ``counter`` defaults to the fast estimate ``tracegrad.llm.tokens.estimate_tokens``.
    """
    count = counter or estimate_tokens
    slots = _slots(problem, history)
    default = None if value_tokens is None else int(value_tokens * CHARS_PER_TOKEN)
    caps: dict[str, int | None] = {g: default for g in CAPPED}
    if budget_tokens is None:
        return _join(slots, caps)
    max_chars = int(budget_tokens * CHARS_PER_TOKEN)
    text = ""
    for _ in range(4):
        _fit(slots, caps, max_chars)
        text = _join(slots, caps)
        if len(text) > max_chars:
            text = truncate(text, max_chars)
        tokens = count(text)
        if tokens <= budget_tokens:
            return text
        max_chars = int(max_chars * budget_tokens / tokens * 0.9)
    return fit_text(text, budget_tokens, count)


def fit_text(text: str, budget_tokens: int, counter: TokenCounter | None = None) -> str:
    """``text`` cut in the middle (with a marker) until ``counter`` says it fits."""
    count = counter or estimate_tokens
    tokens = count(text)
    while tokens > budget_tokens and text:
        target = int(len(text) * budget_tokens / tokens * 0.9)
        shorter = truncate(text, target)
        text = shorter if len(shorter) < len(text) else text[:target]
        tokens = count(text)
    return text
