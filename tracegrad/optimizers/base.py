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

Feedback is consumed by the step that used it: ``commit`` clears the feedback of the
optimizer's parameters (and a gradient optimizer's registered losses), so a loop that
forgets ``zero_feedback()`` never shows the model an earlier round's feedback again.
Proposing clears nothing: a proposal that is dropped leaves the feedback for the next
one. ``zero_feedback()`` still clears it by hand (before a batch, say).

A step that can do nothing -- no feedback, or feedback on an output that depends on
none of the optimizer's parameters -- ends with status ``no_feedback`` and a
``reason`` in its report; the first such step of an optimizer also warns.

Copies (``copy.copy`` and ``copy.deepcopy`` alike) are for candidate search: a copy
has its own state (step count, memory, optax state) and the same parameters (not
copied: they are what is optimized) and shares the model client, so that budgets
and accounting stay joint. Each optimizer lists what else its copies share in
``_shared_on_copy``.

Run events (``tracegrad.events``): ``step()`` emits ``Proposed`` (or ``BudgetExhausted`` /
``ErrorRaised``), ``apply()`` emits ``Decided``, to ``optimizer.events``, which copies share.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from tracegrad.errors import InvalidValueError, TracegradError
from tracegrad.events import BudgetExhausted, Decided, Dispatcher, ErrorRaised, Proposed, Subscriber
from tracegrad.nodes.module import Module
from tracegrad.optimizers.report import STATUSES, ParameterUpdate, Proposal, Rejection, StepReport
from tracegrad.trace import Node, ParameterNode, ancestors, assign


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
    #: Attributes a copy shares with the original (the rest is copied; the parameters
    #: are never copied). Lists of nodes named in ``_listed_on_copy`` are copied as lists.
    _shared_on_copy: ClassVar[frozenset[str]] = frozenset()
    _listed_on_copy: ClassVar[frozenset[str]] = frozenset({"_unreached"})

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
        self._unreached: list[Node] = []  # outputs given feedback that reached no parameter
        self._warned_idle = False
        #: Where this optimizer's run events go (see ``tracegrad.events``); shared by copies.
        self.events = Dispatcher()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(event)`` with this optimizer's run events (and a trainer's, while it uses
        this optimizer); returns a function that unsubscribes it."""
        return self.events.subscribe(fn)

    def parameter(self, name: str) -> ParameterNode:
        """The parameter called ``name``."""
        try:
            return self.names[name]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no parameter {name!r}; it has {sorted(self.names)}") from None

    # -- the feedback loop -----------------------------------------------------------------
    def zero_feedback(self) -> None:
        """Forget the feedback the parameters have received (``commit`` also does)."""
        for p in self.parameters:
            p.clear_feedback()
        self._unreached.clear()

    def backward(self, output: Node, feedback: Any = "") -> None:
        """Give ``feedback`` to ``output`` and propagate it to the parameters."""
        if not isinstance(output, Node):
            raise TypeError(f"backward() needs the output node, got {type(output).__name__}")
        output.backward(feedback)
        self._note_reach(output)

    def _note_reach(self, output: Node) -> None:
        """Remember ``output`` if it depends on none of the parameters (for the reason of
        a step that can do nothing)."""
        ids = {id(p) for p in self.parameters}
        if not any(id(n) in ids for n in ancestors((output,))):
            self._unreached.append(output)

    def _idle_reason(self) -> str:
        """Why a step has nothing to learn from, in one sentence."""
        who = type(self).__name__
        if self._unreached:
            names = ", ".join(sorted({n.name for n in self._unreached}))
            return (
                f"the feedback given to {names} reached none of the parameters of this {who}: "
                "the output does not depend on them (does the workflow return its traced output node?)"
            )
        return (
            f"no parameter of this {who} has feedback: run the workflow, then call "
            "backward(output, feedback) on its output"
        )

    def _idle_proposal(self) -> Proposal:
        """The proposal of a step that has nothing to learn from: no values, a reason."""
        return self._proposal({}, self._report("no_feedback", reason=self._idle_reason()))

    def _consume_feedback(self) -> None:
        """What ``commit`` does with the feedback the step used: the parameters forget
        theirs (a gradient optimizer also its registered losses)."""
        for p in self.parameters:
            p.clear_feedback()
        self._unreached.clear()

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
        report = proposal.report
        try:
            self.assign(proposal)
        except InvalidValueError as exc:
            if self.events:
                self.events.emit(Decided(step=report.step, accepted=False, reason=str(exc)))
            raise
        self.commit(proposal)
        if self.events:
            self.events.emit(Decided(step=report.step, accepted=True, reason=report.reason))
        if report.status == "no_feedback" and not self._warned_idle:
            self._warned_idle = True
            warnings.warn(f"{type(self).__name__}.step() did nothing: {report.reason}", stacklevel=3)
        return report

    def assign(self, proposal: Proposal) -> None:
        """Assign the proposal's values to the parameters, all or none (no state change);
        the report's updates are set to what was assigned."""
        items = list(proposal.values.items())
        triples = assign({self.parameter(name): value for name, value in items})
        report = proposal.report
        proposed = {u.name: u for u in report.updates}  # kept when nothing moved: changed is known
        report.set_updates(
            [
                u
                if (u := proposed.get(name)) is not None and u.old is old and u.new is new
                else ParameterUpdate(name, old, new)
                for (name, _), (_, old, new) in zip(items, triples, strict=True)
            ]
        )

    def commit(self, proposal: Proposal) -> None:
        """Take on the optimizer state of an assigned proposal, count it, log it, and
        consume the feedback (see the module docstring).

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
        self._consume_feedback()

    def step(self) -> StepReport:
        """Update the parameters from their feedback: ``apply(propose())``."""
        try:
            proposal = self.propose()
        except Exception as exc:
            self._announce_error(exc)
            raise
        self._announce(proposal)
        return self.apply(proposal)

    async def astep(self) -> StepReport:
        """``step()`` for async code: ``apply(await apropose())``."""
        try:
            proposal = await self.apropose()
        except Exception as exc:
            self._announce_error(exc)
            raise
        self._announce(proposal)
        return self.apply(proposal)

    def _announce(self, proposal: Proposal) -> None:
        """Emit the ``Proposed`` event of a proposal this optimizer is about to apply."""
        if self.events:
            self.events.emit(Proposed.of(proposal, step=proposal.report.step))

    def _announce_error(self, exc: Exception) -> None:
        """Emit what a failed proposal of the next step raised (a spent budget, an error)."""
        if not self.events:
            return
        from tracegrad.llm.errors import BudgetExceeded

        step = self.step_count + 1
        if isinstance(exc, BudgetExceeded):
            self.events.emit(BudgetExhausted(step=step, message=str(exc)))
        else:
            self.events.emit(ErrorRaised.of(exc, step=step))

    def _proposal(
        self, values: Mapping[str, Any], report: StepReport, state: Any = None, *, steps: int = 1
    ) -> Proposal:
        """A proposal of this optimizer at its current step; the report's updates are filled
        in from the current and proposed values when the caller left them empty."""
        values = dict(values)
        if values and not report.updates:
            report.set_updates([ParameterUpdate(name, self.parameter(name).value, v) for name, v in values.items()])
        return Proposal(values, report, state, steps, optimizer=self, base_step=self.step_count)

    def _report(self, status: str = "unchanged", **fields: Any) -> StepReport:
        """A report for the next step of this optimizer."""
        return StepReport(type(self).__name__, self.step_count + 1, status, **fields)

    # -- copies ------------------------------------------------------------------------------
    def __deepcopy__(self, memo: dict[int, Any]) -> Optimizer:
        """A copy with its own state, the same parameters and the shared client (see the
        module docstring)."""
        cls = type(self)
        clone = cls.__new__(cls)
        memo[id(self)] = clone
        for p in self.parameters:
            memo.setdefault(id(p), p)
        for key, value in self.__dict__.items():
            if key in self._shared_on_copy:
                clone.__dict__[key] = value
            elif key in self._listed_on_copy:
                clone.__dict__[key] = list(value)
            else:
                clone.__dict__[key] = copy.deepcopy(value, memo)
        return clone

    def __copy__(self) -> Optimizer:
        return self.__deepcopy__({})

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
    "STATUSES",
    "Optimizer",
    "ParameterUpdate",
    "Proposal",
    "Rejection",
    "StepReport",
    "has_float_dtype",
    "is_loss_value",
]
