"""``LLMOptimizer``: the base of the optimizers that ask a model for new values.

A subclass decides what the model is shown (``_prompt``); the base does the rest of a
step: ask for ``{reasoning, answer, suggestion}``, check each suggested value against
its parameter's kind, ask again with the reasons when something is rejected (a bounded
number of times), apply the accepted values all-or-nothing, remember the last values
and their feedback, and return an ``LLMStepReport``. A malformed reply never changes a
parameter; only errors of the model call itself (budget, network) are raised.
"""

from __future__ import annotations

import json
import os
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracegrad.nodes.module import Module
from tracegrad.optimizers.base import Optimizer, StepReport, apply_updates
from tracegrad.llm.tokens import TokenCounter, estimate_tokens, litellm_counter, truncate
from tracegrad.optimizers.llm.exchange import Exchange, Prompt
from tracegrad.optimizers.llm.problem import Problem
from tracegrad.optimizers.llm.render import render_problem
from tracegrad.optimizers.llm.suggestions import Rejection
from tracegrad.optimizers.llm.values import literal
from tracegrad.trace.node import ParameterNode

if TYPE_CHECKING:
    from tracegrad.llm.client import LLM
    from tracegrad.llm.usage import CostEstimate


#: Reply tokens asked for by default (room for a rewritten function and its reasoning).
DEFAULT_REPLY_TOKENS = 4096
#: The fewest prompt tokens a problem may be squeezed into and still say something.
MIN_PROBLEM_TOKENS = 256


@dataclass
class LLMStepReport(StepReport):
    """A ``StepReport`` with what the model said and what it cost.

    ``status`` is ``updated`` (values changed), ``unchanged`` (the model suggested
    nothing new), ``rejected`` (every attempt had an invalid suggestion; nothing was
    applied), ``no_reply`` (no usable JSON after every attempt) or ``no_feedback``
    (no parameter had feedback, so no model was called).
    """

    status: str = ""
    reasoning: str = ""
    answer: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    calls: int = 0
    attempts: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    overhead_ms: float = 0.0

    def summary(self) -> str:
        """A few readable lines: what changed and why, what was rejected, the cost."""
        lines = [f"step {self.step} ({self.optimizer}): {self.status}"]
        for u in self.updates:
            if u.changed:
                lines.append(f"  {u.name}: {truncate(literal(u.old), 80)} -> {truncate(literal(u.new), 80)}")
        lines += [f"  rejected {r.name}: {r.reason}" for r in self.rejections]
        if self.reasoning:
            lines.append(f"  reasoning: {truncate(self.reasoning, 400)}")
        cost = "unknown cost" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        lines.append(f"  {self.calls} calls, {self.prompt_tokens}+{self.completion_tokens} tokens, {cost}")
        return "\n".join(lines)


@dataclass
class Memory:
    """The values of the variables at one step and the feedback they received."""

    values: dict[str, Any]
    feedback: str

    def render(self) -> str:
        values = ", ".join(f"{k}={literal(v)}" for k, v in self.values.items())
        return f"{values}\nfeedback: {self.feedback}"


class LLMOptimizer(Optimizer):
    """Base of the LLM optimizers; see the module docstring.

    ``llm`` is a ``tracegrad.optimizers.llm.LLM`` (default: ``LLM()``, configured from
    ``$TRACEGRAD_MODEL``). ``prompt_tokens`` bounds the prompt the optimizer writes,
    ``value_tokens`` each intermediate value in it. ``token_counter`` is a function
    ``text -> tokens``, or ``"model"`` for the model's own tokenizer (default: a fast
    estimate). ``max_attempts`` bounds the model calls of one step.
    """

    system_prompt = ""
    default_objective = ""
    default_memory_size = 0

    def __init__(
        self,
        parameters: Iterable[ParameterNode] | Module,
        llm: LLM | None = None,
        *,
        objective: str | None = None,
        memory_size: int | None = None,
        max_attempts: int = 3,
        prompt_tokens: int = 16_000,
        value_tokens: int | None = 600,
        token_counter: TokenCounter | str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        **call_settings: Any,
    ) -> None:
        super().__init__(parameters, log_path=log_path)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if llm is None:
            from tracegrad.llm.client import LLM

            llm = LLM()
        self.llm = llm
        self.objective = objective or self.default_objective
        size = self.default_memory_size if memory_size is None else memory_size
        self.memory: deque[Memory] = deque(maxlen=max(size, 0))
        self.max_attempts = max_attempts
        self.prompt_tokens = prompt_tokens
        self.value_tokens = value_tokens
        if token_counter == "model":
            token_counter = litellm_counter(llm.model)
        elif isinstance(token_counter, str):
            raise ValueError('token_counter must be a function or "model"')
        self.count_tokens: TokenCounter = token_counter or estimate_tokens
        room = prompt_tokens - self.count_tokens(self.system_prompt) - Exchange.reask_tokens(self)
        if room < MIN_PROBLEM_TOKENS:
            needed = prompt_tokens - room + MIN_PROBLEM_TOKENS
            raise ValueError(
                f"prompt_tokens={prompt_tokens} leaves {room} tokens for the problem after the fixed "
                f"instructions and the room kept for a re-ask; give at least {needed}"
            )
        if "max_tokens" not in call_settings and "max_tokens" not in llm.settings:
            # a model that never stops would otherwise generate up to its context limit
            call_settings["max_tokens"] = DEFAULT_REPLY_TOKENS
        self.call_settings = call_settings
        self.last_messages: list[dict[str, str]] = []

    # -- what the model sees (subclasses) -------------------------------------------
    @abstractmethod
    def _prompt(self, parameters: Sequence[ParameterNode], budget_tokens: int) -> Prompt:
        """The user message for these parameters (all have feedback), within the budget."""

    def _render(self, problem: Problem, budget_tokens: int) -> str:
        """The problem as prompt text, with the remembered steps, within the budget."""
        return render_problem(
            problem,
            history=self.history(),
            budget_tokens=budget_tokens,
            value_tokens=self.value_tokens,
            counter=self.count_tokens,
        )

    def _snapshot(self) -> Any:
        return super()._snapshot(), list(self.memory)

    def _restore(self, snapshot: Any) -> None:
        base, memory = snapshot
        super()._restore(base)
        self.memory.clear()
        self.memory.extend(memory)

    def history(self) -> list[str]:
        """The remembered steps, oldest first, as prompt text."""
        return [m.render() for m in self.memory]

    def estimate_cost(self, steps: int = 1) -> CostEstimate | None:
        """Project the cost of ``steps`` more steps from the prompt the next one would send
        (one call a step; re-asks cost more), or None when no parameter has feedback."""
        exchange = self._begin()
        if exchange is None:
            return None
        reply_tokens = int(self.call_settings.get("max_tokens") or self.llm.settings.get("max_tokens") or 0) or None
        return self.llm.estimate_cost(exchange.first_messages, reply_tokens, calls=steps)

    # -- one step -------------------------------------------------------------------------
    def _begin(self) -> Exchange | None:
        params = [p for p in self.parameters if p._feedback]
        if not params:
            return None
        system_tokens = self.count_tokens(self.system_prompt)
        budget = max(self.prompt_tokens - system_tokens - Exchange.reask_tokens(self), 16)
        return Exchange(self, self._prompt(params, budget))

    def _step(self) -> LLMStepReport:
        started = time.perf_counter()
        exchange = self._begin()
        if exchange is None:
            return self._no_feedback()
        while (messages := exchange.next_messages()) is not None:
            call_started = time.perf_counter()
            try:
                completion = self.llm.complete(messages, schema=exchange.schema, repairs=0, **self.call_settings)
            except Exception as exc:
                exchange.on_error(exc, time.perf_counter() - call_started)
                continue
            exchange.on_reply(completion, time.perf_counter() - call_started)
        return self._finish(exchange, started)

    async def astep(self) -> LLMStepReport:
        """``step()`` for async code: the model is called with ``acomplete``."""
        started = time.perf_counter()
        exchange = self._begin()
        if exchange is None:
            report = self._no_feedback()
        else:
            while (messages := exchange.next_messages()) is not None:
                call_started = time.perf_counter()
                try:
                    completion = await self.llm.acomplete(
                        messages, schema=exchange.schema, repairs=0, **self.call_settings
                    )
                except Exception as exc:
                    exchange.on_error(exc, time.perf_counter() - call_started)
                    continue
                exchange.on_reply(completion, time.perf_counter() - call_started)
            report = self._finish(exchange, started)
        return self._record(report)  # type: ignore[return-value]

    def _no_feedback(self) -> LLMStepReport:
        return LLMStepReport(type(self).__name__, self.step_count + 1, status="no_feedback")

    def _finish(self, exchange: Exchange, started: float) -> LLMStepReport:
        updates = apply_updates(exchange.accepted) if exchange.accepted else []
        if exchange.outcome in ("rejected", "no_reply"):
            status = exchange.outcome
        else:
            status = "updated" if any(u.changed for u in updates) else "unchanged"
        self.memory.append(Memory(exchange.values, exchange.prompt.feedback))
        usage = exchange.usage()
        return LLMStepReport(
            type(self).__name__,
            self.step_count + 1,
            updates=updates,
            details={"prompt_chars": sum(len(m["content"]) for m in exchange.first_messages)},
            status=status,
            reasoning=exchange.reasoning,
            answer=exchange.answer,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=None if usage.calls_without_cost else usage.cost_usd,
            calls=usage.calls,
            attempts=exchange.attempts,
            rejections=exchange.rejections,
            overhead_ms=1000 * (time.perf_counter() - started - exchange.model_seconds),
        )

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["objective"] = self.objective
        state["memory"] = [{"values": m.values, "feedback": m.feedback} for m in self.memory]
        return json.loads(json.dumps(state, default=repr))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.objective = state.get("objective", self.objective)
        self.memory.clear()
        for item in state.get("memory", ()):
            self.memory.append(Memory(dict(item["values"]), str(item["feedback"])))
