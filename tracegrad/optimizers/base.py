"""The optimizer protocol: propose, then apply, over an explicit, saveable state.

The loop users know is ``zero_feedback()`` / ``backward(output, feedback)`` / ``step()``.
Underneath, a step is two public halves, in the spirit of optax's ``update`` and the
reference library's ``step() = update(propose())``:

* ``propose()`` reads the feedback and returns a :class:`Proposal` -- new values per
  parameter, the report of how they were found, and the optimizer state that goes with
  them -- and changes nothing: no parameter, no step count, no memory, no optax state;
* ``apply(proposal)`` validates every value against its parameter's kind, assigns them
  all or none, then ``commit(proposal)`` takes on the proposal's optimizer state,
  counts the step and logs its report.

So a trainer can evaluate a proposal before accepting it, keep several candidates, or
drop one: a proposal that is never applied leaves the optimizer exactly as it was.
``state_dict()`` / ``load_state_dict()`` hold everything needed to resume.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tracegrad._text import literal, truncate
from tracegrad.errors import TracegradError
from tracegrad.nodes.module import Module
from tracegrad.trace import Node, ParameterNode, assign

#: The statuses a step can end with (see ``StepReport``).
STATUSES = ("updated", "unchanged", "rejected", "no_reply", "no_feedback")


@dataclass
class ParameterUpdate:
    """What one step did (or proposes to do) to one parameter."""

    name: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
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
    feedback to learn from). ``details`` holds an optimizer's own figures (a loss, a
    gradient norm, the prompt size); ``parts`` the reports of a composite's optimizers.
    ``messages`` and ``reply`` are the exact last request and raw reply of a model.
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
    attempts: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, StepReport] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: str = ""
    overhead_ms: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether any parameter got a different value."""
        return any(u.changed for u in self.updates)

    def summary(self) -> str:
        """A few readable lines: what changed and why, what was rejected, the cost."""
        lines = [f"step {self.step} ({self.optimizer}): {self.status}"]
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
            lines.append(f"  {self.calls} calls, {self.prompt_tokens}+{self.completion_tokens} tokens, {cost}")
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


class Optimizer(ABC):
    """Base class: the parameters and their names, the feedback loop, propose/apply.

    Subclasses implement ``propose()`` and, when they keep state, ``_take_state`` (called
    by ``commit`` with a proposal's ``state``) and ``state_dict`` / ``load_state_dict``.

    Parameters: a ``Module`` (its parameters, named by their paths), a list of
    parameters, or a single parameter. Parameters outside a module keep the names given
    to them; unnamed ones are named ``param1``, ``param2`` ... by position and repeated
    names get ``_2``, ``_3`` ..., so names are unique and the same in every process
    that builds the same list (checkpoints load across processes).
    """

    #: Whether ``backward`` wants the numeric loss node rather than feedback text (a
    #: gradient optimizer); composites route the loss by it.
    takes_loss: ClassVar[bool] = False

    def __init__(
        self,
        parameters: ParameterNode | Iterable[ParameterNode] | Module,
        *,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        params = _parameter_list(parameters, type(self).__name__)
        self.names: dict[str, ParameterNode] = _unique_names(params)
        self.parameters: list[ParameterNode] = list(self.names.values())
        self.log_path = Path(log_path) if log_path is not None else None
        self.step_count = 0

    def parameter(self, name: str) -> ParameterNode:
        """The parameter called ``name``."""
        try:
            return self.names[name]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no parameter {name!r}; it has {sorted(self.names)}") from None

    # -- the feedback loop -----------------------------------------------------------------
    def zero_feedback(self) -> None:
        """Forget the feedback the parameters have received."""
        for p in self.parameters:
            p.clear_feedback()

    def backward(self, output: Node, feedback: Any = "") -> None:
        """Give ``feedback`` to ``output`` and propagate it to the parameters."""
        if not isinstance(output, Node):
            raise TypeError(f"backward() needs the output node, got {type(output).__name__}")
        output.backward(feedback)

    # -- propose / apply ---------------------------------------------------------------------
    @abstractmethod
    def propose(self, *, sample: int = 0) -> Proposal:
        """New values from the current feedback; changes no parameter and no state.

        ``sample`` asks for the ``sample``-th of several proposals from the same state
        (candidate search): an optimizer that samples (an LLM) draws a different one
        for each; a deterministic optimizer may return the same proposal.
        """

    async def apropose(self, *, sample: int = 0) -> Proposal:
        """``propose()`` for async code (optimizers that call a model override it)."""
        return self.propose(sample=sample)

    def apply(self, proposal: Proposal) -> StepReport:
        """Validate and assign every value of ``proposal`` (all or none), then ``commit``.

        Raises ``InvalidValueError`` naming the parameter when a value does not fit its
        kind; nothing is assigned and the optimizer's state is unchanged then.
        """
        self._check_current(proposal)
        self.assign(proposal)
        self.commit(proposal)
        return proposal.report

    def assign(self, proposal: Proposal) -> None:
        """Assign the proposal's values to the parameters, all or none (no state change);
        the report's updates are set to what was assigned."""
        items = list(proposal.values.items())
        triples = assign({self.parameter(name): value for name, value in items})
        report = proposal.report
        report.updates = [
            ParameterUpdate(name, old, new) for (name, _), (_, old, new) in zip(items, triples, strict=True)
        ]
        if report.status in ("updated", "unchanged"):
            report.status = "updated" if report.changed else "unchanged"

    def commit(self, proposal: Proposal) -> None:
        """Take on the optimizer state of an assigned proposal, count it and log it.

        ``apply`` calls it; a composite that assigns its parts' values in one go calls
        it on each part.
        """
        self._check_current(proposal)
        if proposal.state is not None:
            self._take_state(proposal.state)
        self.step_count += proposal.steps
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(proposal.report.to_json()) + "\n")

    def step(self) -> StepReport:
        """Update the parameters from their feedback: ``apply(propose())``."""
        return self.apply(self.propose())

    async def astep(self) -> StepReport:
        """``step()`` for async code: ``apply(await apropose())``."""
        return self.apply(await self.apropose())

    def _proposal(
        self, values: Mapping[str, Any], report: StepReport, state: Any = None, *, steps: int = 1
    ) -> Proposal:
        """A proposal of this optimizer at its current step; the report's updates are filled
        in from the current and proposed values when the caller left them empty."""
        values = dict(values)
        if values and not report.updates:
            report.updates = [ParameterUpdate(name, self.parameter(name).value, v) for name, v in values.items()]
            if report.status in ("updated", "unchanged"):
                report.status = "updated" if report.changed else "unchanged"
        return Proposal(values, report, state, steps, optimizer=self, base_step=self.step_count)

    def _report(self, status: str = "unchanged", **fields: Any) -> StepReport:
        """A report for the next step of this optimizer."""
        return StepReport(type(self).__name__, self.step_count + 1, status, **fields)

    def _take_state(self, state: Any) -> None:  # noqa: B027  (optional hook: most optimizers keep state)
        """Take on a committed proposal's state (the base keeps none but the step count)."""

    def _check_current(self, proposal: Proposal) -> None:
        if proposal.optimizer is not self:
            raise TracegradError(f"this proposal was made by another optimizer, not this {type(self).__name__}")
        if proposal.base_step != self.step_count:
            raise TracegradError(
                f"this proposal was made at step {proposal.base_step + 1} and this optimizer has moved on to "
                f"step {self.step_count + 1}; propose again"
            )

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], module: Module | None = None) -> None:
        """Write the parameters (``module``'s, else this optimizer's) and this optimizer's
        state to one atomic JSON checkpoint."""
        from tracegrad.optimizers.checkpoint import save_checkpoint

        save_checkpoint(path, self, module)

    def load(self, path: str | os.PathLike[str], module: Module | None = None) -> None:
        """Restore what ``save`` wrote: parameters and optimizer state, all or nothing."""
        from tracegrad.optimizers.checkpoint import load_checkpoint

        load_checkpoint(path, self, module)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as JSON-compatible data."""
        return {"type": type(self).__name__, "step_count": self.step_count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.step_count = self._checked_step_count(state)

    def _checked_step_count(self, state: Mapping[str, Any]) -> int:
        """The step count of a saved state of this optimizer's type, checked (changes nothing)."""
        if not isinstance(state, Mapping) or state.get("type") != type(self).__name__:
            found = state.get("type") if isinstance(state, Mapping) else type(state).__name__
            raise TracegradError(f"state of a {found} cannot be loaded into a {type(self).__name__}")
        count = state.get("step_count", 0)
        if type(count) is not int or count < 0:
            raise TracegradError(f"step_count must be a non-negative integer, got {count!r}")
        return count


def has_float_dtype(value: Any) -> bool:
    """Whether an array's dtype is floating point (checked without importing JAX)."""
    return str(getattr(value, "dtype", "")).startswith(("float", "bfloat"))


def is_loss_value(value: Any) -> bool:
    """A float or a one-element floating-point array: a loss gradients can be taken of."""
    return isinstance(value, float) or (getattr(value, "size", None) == 1 and has_float_dtype(value))


def _parameter_list(parameters: Any, who: str) -> list[ParameterNode]:
    if isinstance(parameters, Module):
        params = [p for _, p in parameters.named_parameters()]
    elif isinstance(parameters, ParameterNode):
        params = [parameters]
    elif isinstance(parameters, (Node, str, bytes)) or not isinstance(parameters, Iterable):
        raise TypeError(
            f"{who} optimizes parameters: pass a parameter, a list of parameters or a Module, not {parameters!r}"
        )
    else:
        params = list(parameters)
    if not params:
        raise ValueError(f"{who} got no parameters to optimize")
    for p in params:
        if not isinstance(p, ParameterNode):
            raise TypeError(f"{who} optimizes parameters; {p!r} is not trainable")
    return list(dict.fromkeys(params))


def _unique_names(params: list[ParameterNode]) -> dict[str, ParameterNode]:
    """Names for the optimizer's parameters, unique and stable (see ``Optimizer``); a
    parameter whose name had to change is renamed, so prompts and pictures agree."""
    taken = {p.given_name for p in params if p.given_name is not None}
    out: dict[str, ParameterNode] = {}
    unnamed = 0
    for p in params:
        name = p.given_name
        if name is None:
            unnamed += 1
            name = f"param{unnamed}"
            while name in taken:
                unnamed += 1
                name = f"param{unnamed}"
        elif name in out:
            base, k = name, 2
            while f"{base}_{k}" in taken or f"{base}_{k}" in out:
                k += 1
            name = f"{base}_{k}"
        if p.given_name != name:
            p.name = name
        taken.add(name)
        out[name] = p
    return out


__all__ = [
    "Optimizer",
    "ParameterUpdate",
    "Proposal",
    "Rejection",
    "StepReport",
    "has_float_dtype",
    "is_loss_value",
]
