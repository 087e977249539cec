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
optimizers that take a loss (``takes_loss = True``, e.g. ``JaxOptimizer``).
``propose()`` asks every part for its proposal and merges them; ``apply()`` validates
and assigns all their values at once, then each part commits its own state (and
consumes its feedback and losses). A part
that fails to propose raises, and nothing is applied: proposing changes nothing, so
there is nothing to roll back. The parts' reports are the merged report's ``parts``.
Plain Python: importing this module does not import JAX.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tracegrad.errors import TracegradError
from tracegrad.nodes.module import Module
from tracegrad.optimizers.base import Optimizer, ParameterUpdate, Proposal, has_float_dtype, is_loss_value
from tracegrad.trace import Node, ParameterNode


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
            if (kind == "array" and has_float_dtype(p.value)) or (kind == "number" and numbers == "jax"):
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
        if any(opt.takes_loss for opt in self.optimizers.values()) and not is_loss_value(target.value):
            raise TypeError(
                f"{target.name} holds a {type(target.value).__name__}, not a floating-point scalar loss, for "
                "the gradient optimizers: pass the numeric loss node as backward(output, feedback, loss=...)"
            )
        if any(not opt.takes_loss for opt in self.optimizers.values()):
            output.backward(feedback)
        for opt in self.optimizers.values():
            if opt.takes_loss:
                opt.backward(target)
        self._note_reach(output)

    # -- propose / apply -----------------------------------------------------------------------
    def propose(self, *, sample: int = 0) -> Proposal:
        """Every part's proposal, merged; nothing changes (a failing part raises, and
        since proposing changes nothing, nothing needs undoing)."""
        parts = {name: opt.propose(sample=sample) for name, opt in self.optimizers.items()}
        return self._merge(parts)

    async def apropose(self, *, sample: int = 0) -> Proposal:
        """``propose()`` for async code: the parts propose concurrently."""
        names = list(self.optimizers)
        proposals = await asyncio.gather(*(self.optimizers[n].apropose(sample=sample) for n in names))
        return self._merge(dict(zip(names, proposals, strict=True)))

    def _merge(self, parts: dict[str, Proposal]) -> Proposal:
        own = {id(p): name for name, p in self.names.items()}  # a part may name a parameter otherwise
        values = {
            own[id(self.optimizers[sub].parameter(name))]: value
            for sub, part in parts.items()
            for name, value in part.values.items()
        }
        reports = {name: part.report for name, part in parts.items()}
        statuses = [r.status for r in reports.values()]
        reason = ""
        if all(s == "no_feedback" for s in statuses):
            status, reason = "no_feedback", self._idle_reason()
        elif any(s == "updated" for s in statuses):
            status = "updated"
        else:
            status = next((s for s in statuses if s not in ("unchanged", "no_feedback")), "unchanged")
        report = self._report(
            status,
            updates=[u for r in reports.values() for u in r.updates],
            calls=sum(r.calls for r in reports.values()),
            prompt_tokens=sum(r.prompt_tokens for r in reports.values()),
            completion_tokens=sum(r.completion_tokens for r in reports.values()),
            cached_prompt_tokens=sum(r.cached_prompt_tokens for r in reports.values()),
            seconds=sum(r.seconds for r in reports.values()),
            cost_usd=None
            if any(r.cost_usd is None for r in reports.values())
            else sum(r.cost_usd or 0.0 for r in reports.values()),
            parts=reports,
            reason=reason,
        )
        return self._proposal(values, report, parts)

    def assign(self, proposal: Proposal) -> None:
        """Assign every part's values at once (all or none) and refresh the parts' reports."""
        super().assign(proposal)
        by_param = {id(self.parameter(u.name)): u for u in proposal.report.updates}
        for sub, part in proposal.state.items():
            opt = self.optimizers[sub]
            part.report.set_updates(
                [
                    ParameterUpdate(n, by_param[id(opt.parameter(n))].old, by_param[id(opt.parameter(n))].new)
                    for n in part.values
                ]
            )

    def _take_state(self, parts: dict[str, Proposal]) -> None:
        for name, part in parts.items():  # values are assigned: each part takes its state
            self.optimizers[name].commit(part)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["optimizers"] = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore every optimizer's state, or (if one is refused) none."""
        count = self._checked_step_count(state)
        subs = state.get("optimizers")
        if not isinstance(subs, Mapping) or sorted(subs) != sorted(self.optimizers):
            found = sorted(subs) if isinstance(subs, Mapping) else subs
            raise TracegradError(f"the saved state is for optimizers {found}, not {sorted(self.optimizers)}")
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
        self.step_count = count


__all__ = ["Hybrid"]
