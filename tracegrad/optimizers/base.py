"""The optimizer base: the PyTorch-like loop over an explicit, saveable state.

``zero_feedback()`` / ``backward(output, feedback)`` / ``step()`` as users know it;
``state_dict()`` / ``load_state_dict()`` hold everything needed to resume (optax's
lesson: state that is just data is state that checkpoints). Every step returns a
``StepReport`` that says what changed, and can be appended to a JSON-lines log.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracegrad.errors import InvalidValueError, TracegradError
from tracegrad.nodes.module import Module
from tracegrad.trace.node import Node, ParameterNode


@dataclass
class ParameterUpdate:
    """What one step did to one parameter."""

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
class StepReport:
    """The outcome of one ``step()``: per-parameter old and new values, plus details."""

    optimizer: str
    step: int
    updates: list[ParameterUpdate] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(u.changed for u in self.updates)

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible summary (values shown with ``repr`` when not JSON data)."""
        data = asdict(self)
        data["changed"] = self.changed
        return json.loads(json.dumps(data, default=repr))


class Optimizer(ABC):
    """Base class: holds the parameters, the feedback loop and the step counter.

    Subclasses implement ``_step()``, returning a ``StepReport``, and extend
    ``state_dict`` / ``load_state_dict`` with their own state.
    """

    def __init__(self, parameters: Iterable[ParameterNode] | Module, *, log_path: str | os.PathLike[str] | None = None):
        params = parameters.parameters() if isinstance(parameters, Module) else list(parameters)
        if not params:
            raise ValueError(f"{type(self).__name__} got no parameters to optimize")
        for p in params:
            if not isinstance(p, ParameterNode):
                raise TypeError(f"{type(self).__name__} optimizes parameters; {p!r} is not trainable")
        self.parameters: list[ParameterNode] = list(dict.fromkeys(params))
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameter names must be unique for an optimizer; repeated: {duplicates}")
        self.log_path = Path(log_path) if log_path is not None else None
        self.step_count = 0

    def parameter(self, name: str) -> ParameterNode:
        """The parameter called ``name``."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def zero_feedback(self) -> None:
        """Forget the feedback the parameters have received."""
        for p in self.parameters:
            p._feedback = None

    def backward(self, output: Node, feedback: Any = "") -> None:
        """Give ``feedback`` to ``output`` and propagate it to the parameters."""
        if not isinstance(output, Node):
            raise TypeError(f"backward() needs the output node, got {type(output).__name__}")
        output.backward(feedback)

    def step(self) -> StepReport:
        """Update the parameters from their feedback; returns what changed and why."""
        return self._record(self._step())

    def _record(self, report: StepReport, steps: int = 1) -> StepReport:
        """Count a finished step (or ``steps`` of them) and append its report to the log."""
        self.step_count += steps
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(report.to_json()) + "\n")
        return report

    @abstractmethod
    def _step(self) -> StepReport:
        """One update of the parameters from their feedback (see ``step``)."""

    def save(self, path: str | os.PathLike[str], module: Module | None = None) -> None:
        """Write the parameters (``module``'s, else this optimizer's) and this optimizer's
        state to one atomic JSON checkpoint."""
        from tracegrad.optimizers.checkpoint import save_checkpoint

        save_checkpoint(path, self, module)

    def load(self, path: str | os.PathLike[str], module: Module | None = None) -> None:
        """Restore what ``save`` wrote: parameters and optimizer state, all or nothing."""
        from tracegrad.optimizers.checkpoint import load_checkpoint

        load_checkpoint(path, self, module)

    def _snapshot(self) -> Any:
        """In-memory state to put back if a composite step or a load fails (parameter
        values are restored by the caller); subclasses add their own state."""
        return self.step_count

    def _restore(self, snapshot: Any) -> None:
        self.step_count = snapshot

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as JSON-compatible data."""
        return {"type": type(self).__name__, "step_count": self.step_count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        if state.get("type") != type(self).__name__:
            raise TracegradError(f"state of a {state.get('type')} cannot be loaded into a {type(self).__name__}")
        self.step_count = int(state.get("step_count", 0))


def has_float_dtype(value: Any) -> bool:
    """Whether an array's dtype is floating point (checked without importing JAX)."""
    return str(getattr(value, "dtype", "")).startswith(("float", "bfloat"))


def is_loss_value(value: Any) -> bool:
    """A float or a one-element floating-point array: a loss gradients can be taken of."""
    return isinstance(value, float) or (getattr(value, "size", None) == 1 and has_float_dtype(value))


def apply_updates(updates: Mapping[ParameterNode, Any]) -> list[ParameterUpdate]:
    """Validate every new value first, then assign them all; on any error assign none.

    Raises ``InvalidValueError`` naming the parameter and the reason.
    """
    staged = {}
    for param, value in updates.items():
        try:
            staged[param] = param.kind.validate(value)
        except InvalidValueError as exc:
            raise InvalidValueError(exc.reason, name=param.name) from None
    report = []
    for param, value in staged.items():
        report.append(ParameterUpdate(param.name, param._data, value))
        param._data = value
    return report
