"""``Hybrid``: several optimizers on one graph -- gradients for arrays, an LLM for the rest.

::

    opt = Hybrid(llm=OptoPrime([controller.parameter], llm=LLM()),
                 jax=JaxOptimizer([gains], optax.adam(0.05)))
    loss = simulate(controller, gains)
    opt.zero_feedback()
    opt.backward(loss, f"cost {float(loss.data):.3f}: the system overshoots")
    report = opt.step()      # gradient step on `gains`, LLM proposal for the code

Each parameter belongs to exactly one optimizer. ``backward(output, feedback)``
propagates ``feedback`` (text, a score ...) once, for the optimizers that read
feedback, and hands the numeric loss node (``loss=``, default ``output``) to the
optimizers that take a loss (``takes_loss = True``, e.g. ``JaxOptimizer``). ``step()``
runs the gradient optimizers first (they replay the trace with the values it recorded)
and then the others; if one raises, every parameter gets its old value back and the
error is raised. The reports are merged into one. Plain Python: importing this module
does not import JAX.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tracegrad.errors import TracegradError
from tracegrad.nodes.module import Module
from tracegrad.optimizers.base import Optimizer, StepReport, has_float_dtype, is_loss_value
from tracegrad.trace.node import Node, ParameterNode


def _takes_loss(opt: Optimizer) -> bool:
    return bool(getattr(opt, "takes_loss", False))


class Hybrid(Optimizer):
    """Route each parameter to one optimizer and step them together.

    ``Hybrid(opt_a, opt_b)`` or ``Hybrid(llm=..., jax=...)`` (names key the merged
    report and the state). ``Hybrid.by_kind(params, llm=factory, jax=factory)`` splits
    parameters by kind: float arrays (and, by default, numbers) to ``jax``, the rest to
    ``llm``.
    """

    def __init__(
        self,
        *optimizers: Optimizer,
        log_path: str | os.PathLike[str] | None = None,
        **named: Optimizer,
    ) -> None:
        subs: dict[str, Optimizer] = {}
        for opt in optimizers:
            base = type(opt).__name__
            name, i = base, 1
            while name in subs or name in named:
                i += 1
                name = f"{base}{i}"
            subs[name] = opt
        subs.update(named)
        if not subs:
            raise ValueError("Hybrid needs at least one optimizer")
        owner: dict[int, str] = {}
        for name, opt in subs.items():
            if not isinstance(opt, Optimizer):
                raise TypeError(f"Hybrid combines optimizers; {name!r} is a {type(opt).__name__}")
            for p in opt.parameters:
                if id(p) in owner:
                    raise ValueError(
                        f"parameter {p.name} belongs to both {owner[id(p)]!r} and {name!r}; "
                        "each parameter must belong to exactly one optimizer"
                    )
                owner[id(p)] = name
        super().__init__([p for opt in subs.values() for p in opt.parameters], log_path=log_path)
        self.optimizers: dict[str, Optimizer] = subs
        self.owner = owner

    @classmethod
    def by_kind(
        cls,
        parameters: Iterable[ParameterNode] | Module,
        *,
        llm: Callable[[list[ParameterNode]], Optimizer],
        jax: Callable[[list[ParameterNode]], Optimizer],
        numbers: str = "jax",
        log_path: str | os.PathLike[str] | None = None,
    ) -> Hybrid:
        """Split ``parameters`` by kind: float arrays to ``jax(params)``, the others to
        ``llm(params)``; ``numbers="jax"`` or ``"llm"`` says where numbers go."""
        if numbers not in ("jax", "llm"):
            raise ValueError("numbers must be 'jax' or 'llm'")
        params = parameters.parameters() if isinstance(parameters, Module) else list(parameters)
        grad, text = [], []
        for p in params:
            kind = getattr(p.kind, "name", "")
            if (kind == "array" and has_float_dtype(p._data)) or (kind == "number" and numbers == "jax"):
                grad.append(p)
            else:
                text.append(p)
        subs: dict[str, Optimizer] = {}
        if grad:
            subs["jax"] = jax(grad)
        if text:
            subs["llm"] = llm(text)
        return cls(log_path=log_path, **subs)

    def optimizer_of(self, parameter: ParameterNode) -> Optimizer:
        """The optimizer that owns ``parameter``."""
        try:
            return self.optimizers[self.owner[id(parameter)]]
        except KeyError:
            raise KeyError(f"{parameter.name} is not optimized by this Hybrid") from None

    # -- the feedback loop -----------------------------------------------------------------
    def zero_feedback(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_feedback()
        super().zero_feedback()

    def backward(self, output: Node, feedback: Any = "", *, loss: Node | None = None) -> None:
        """Propagate ``feedback`` from ``output`` (once) and give gradient optimizers the loss.

        ``loss`` is the numeric scalar node to differentiate (default: ``output``).
        """
        if not isinstance(output, Node):
            raise TypeError(f"backward() needs the output node, got {type(output).__name__}")
        target = output if loss is None else loss
        if any(_takes_loss(opt) for opt in self.optimizers.values()) and not is_loss_value(target._data):
            raise TypeError(
                f"{target.name} holds a {type(target._data).__name__}, not a floating-point scalar loss, for "
                "the gradient optimizers: pass the numeric loss node as backward(output, feedback, loss=...)"
            )
        if any(not _takes_loss(opt) for opt in self.optimizers.values()):
            output.backward(feedback)
        for opt in self.optimizers.values():
            if _takes_loss(opt):
                opt.backward(target)

    def _step(self) -> StepReport:
        order = sorted(self.optimizers.items(), key=lambda item: not _takes_loss(item[1]))
        values = [(p, p._data) for p in self.parameters]
        saved = {name: opt._snapshot() for name, opt in self.optimizers.items()}
        reports: dict[str, StepReport] = {}
        try:
            for name, opt in order:
                reports[name] = opt._step()
        except BaseException:
            for p, value in values:
                p._data = value
            for name, opt in self.optimizers.items():
                opt._restore(saved[name])
            raise
        for name, opt in order:  # counted and logged only once every part has succeeded
            opt._record(reports[name])
        return StepReport(
            type(self).__name__,
            self.step_count + 1,
            [u for r in reports.values() for u in r.updates],
            details={name: _summary(r) for name, r in reports.items()},
        )

    def _snapshot(self) -> Any:
        return super()._snapshot(), {name: opt._snapshot() for name, opt in self.optimizers.items()}

    def _restore(self, snapshot: Any) -> None:
        base, parts = snapshot
        super()._restore(base)
        for name, opt in self.optimizers.items():
            opt._restore(parts[name])

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["optimizers"] = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore every optimizer's state, or (if one is refused) none."""
        if state.get("type") != type(self).__name__:
            raise TracegradError(f"state of a {state.get('type')} cannot be loaded into a {type(self).__name__}")
        subs = state.get("optimizers") or {}
        if sorted(subs) != sorted(self.optimizers):
            raise TracegradError(f"the saved state is for optimizers {sorted(subs)}, not {sorted(self.optimizers)}")
        previous = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        loaded = []
        try:
            for name, opt in self.optimizers.items():
                opt.load_state_dict(subs[name])
                loaded.append(name)
        except BaseException:
            for name in loaded:
                self.optimizers[name].load_state_dict(previous[name])
            raise
        self.step_count = int(state.get("step_count", 0))


_BASE_FIELDS = {f.name for f in dataclasses.fields(StepReport)}


def _summary(report: StepReport) -> dict[str, Any]:
    """A sub-report as details: its optimizer, step, details and any extra fields
    (an LLM report's status, reasoning, cost ...)."""
    extra = {f.name: getattr(report, f.name) for f in dataclasses.fields(report) if f.name not in _BASE_FIELDS}
    return {"optimizer": report.optimizer, "step": report.step, **report.details, **extra}


__all__ = ["Hybrid"]
