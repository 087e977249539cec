"""What a step proposes and what it did: ``Proposal``, ``StepReport`` and their parts.

One report type serves every optimizer (LLM, JAX, composites), so that trainers, logs
and pictures read steps the same way whichever optimizer made them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tracegrad._text import literal, truncate

if TYPE_CHECKING:
    from tracegrad.optimizers.base import Optimizer

#: The statuses a step can end with (see ``StepReport``).
STATUSES = ("updated", "unchanged", "rejected", "no_reply", "no_feedback")


@dataclass
class ParameterUpdate:
    """What one step did (or proposes to do) to one parameter."""

    name: str
    old: Any
    new: Any

    @functools.cached_property
    def changed(self) -> bool:
        """Whether ``new`` differs from ``old`` (worked out once: arrays compare on the host)."""
        try:
            return bool(self.old != self.new)
        except (TypeError, ValueError):  # arrays compare element-wise
            import numpy as np

            old, new = np.asarray(self.old), np.asarray(self.new)
            return old.shape != new.shape or bool(np.any(old != new))


@dataclass
class Rejection:
    """A proposed value that was not accepted, and why."""

    name: str
    value: str
    reason: str

    def line(self) -> str:
        return f"- {self.name} = {self.value}: {self.reason}"


@dataclass(repr=False)
class StepReport:
    """What one step did and why -- the one report type of every optimizer.

    ``status`` is ``updated`` (values changed), ``unchanged`` (nothing new was
    proposed), ``rejected`` (every proposed value set was invalid; nothing applied),
    ``no_reply`` (the model gave no usable answer) or ``no_feedback`` (no parameter had
    feedback to learn from). ``reason`` says in one sentence why a step did nothing or
    was refused (empty when it proposed values). ``details`` holds an optimizer's own figures (a loss, a
    gradient norm, the prompt size); ``parts`` the reports of a composite's optimizers.
    ``messages`` and ``reply`` are the exact last request and raw reply of a model.
    ``calls``, the token counts and ``cost_usd`` are what the step's model calls spent
    (``cached_prompt_tokens`` of the prompt tokens were reused by the provider from an
    earlier request); ``seconds`` is the wall time of the proposal.
    """

    optimizer: str
    step: int
    status: str = "unchanged"
    updates: list[ParameterUpdate] = field(default_factory=list)
    reasoning: str = ""
    answer: str | None = None
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    cached_prompt_tokens: int = 0
    seconds: float = 0.0
    attempts: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, StepReport] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: str = ""
    overhead_ms: float = 0.0
    reason: str = ""

    def set_updates(self, updates: list[ParameterUpdate]) -> None:
        """Set ``updates``; a report of changed values (or none) says ``updated`` (or
        ``unchanged``) accordingly, any other status stays."""
        self.updates = updates
        if self.status in ("updated", "unchanged"):
            self.status = "updated" if self.changed else "unchanged"

    @property
    def changed(self) -> bool:
        """Whether any parameter got a different value."""
        return any(u.changed for u in self.updates)

    def summary(self) -> str:
        """A few readable lines: what changed and why, what was rejected, the cost."""
        lines = [f"step {self.step} ({self.optimizer}): {self.status}"]
        if self.reason:
            lines.append(f"  reason: {truncate(self.reason, 400)}")
        for u in self.updates:
            if u.changed:
                lines.append(f"  {u.name}: {truncate(literal(u.old), 80)} -> {truncate(literal(u.new), 80)}")
        lines += [f"  rejected {r.name}: {r.reason}" for r in self.rejections]
        if self.reasoning:
            lines.append(f"  reasoning: {truncate(self.reasoning, 400)}")
        figures = [f"{k}={v:.6g}" for k, v in self.details.items() if isinstance(v, float)]
        if figures:
            lines.append("  " + ", ".join(figures))
        if self.calls or self.prompt_tokens:
            cost = "unknown cost" if self.cost_usd is None else f"${self.cost_usd:.4f}"
            cached = f" ({self.cached_prompt_tokens} cached)" if self.cached_prompt_tokens else ""
            lines.append(
                f"  {self.calls} calls, {self.prompt_tokens}{cached}+{self.completion_tokens} tokens, {cost}, "
                f"{self.seconds:.1f} s"
            )
        for name, part in self.parts.items():
            lines += ["  " + line for line in f"[{name}] {part.summary()}".splitlines()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible data (values shown with ``repr`` when not JSON data)."""
        data = asdict(self)
        data["changed"] = self.changed
        return json.loads(json.dumps(data, default=repr))

    def __repr__(self) -> str:
        changed = sum(u.changed for u in self.updates)
        extra = "".join(f", {k}={v:.6g}" for k, v in self.details.items() if isinstance(v, float))
        return f"<StepReport {self.optimizer} step {self.step}: {self.status}, {changed} changed{extra}>"


@dataclass(repr=False)
class Proposal:
    """New values for some parameters, the report of how they were found, and the state
    the optimizer takes on if they are applied. Making one changes nothing.

    ``values`` maps parameter names (the optimizer's, see ``Optimizer.names``) to new
    values, not yet validated; ``state`` is opaque to all but the optimizer that made it
    (None: its state stays as it is); ``steps`` is how many steps applying it counts.
    """

    values: dict[str, Any]
    report: StepReport
    state: Any = None
    steps: int = 1
    optimizer: Optimizer | None = field(default=None, compare=False)
    base_step: int = 0

    @property
    def status(self) -> str:
        return self.report.status

    def __repr__(self) -> str:
        return f"<Proposal of {self.report.optimizer} step {self.report.step}: {sorted(self.values)}>"


__all__ = ["STATUSES", "ParameterUpdate", "Proposal", "Rejection", "StepReport"]
