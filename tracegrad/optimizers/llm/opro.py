"""``OPRO``: optimization by prompting, from the history of values and feedback only.

It shares everything with ``OptoPrime`` (reply checking, re-asks, all-or-nothing
updates, reports) except what the model is shown: no program, just the current values
with their constraints, earlier values with their feedback, and the current feedback.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracegrad.optimizers.llm.optimizer import LLMOptimizer, Prompt
from tracegrad.optimizers.llm.problem import Entry, Problem, variable_note
from tracegrad.optimizers.llm.prompts import OPRO_OBJECTIVE, OPRO_SYSTEM
from tracegrad.optimizers.llm.values import feedback_text, value_text
from tracegrad.trace import ParameterNode


class OPRO(LLMOptimizer):
    """Proposes new values from the last ``memory_size`` (values, feedback) pairs
    (default 10) and the current feedback; see ``LLMOptimizer`` for the options."""

    system_prompt = OPRO_SYSTEM
    default_objective = OPRO_OBJECTIVE
    default_memory_size = 10

    def _prompt(self, parameters: Sequence[ParameterNode], budget_tokens: int) -> Prompt:
        texts: list[str] = []
        for p in parameters:
            for entry in p.feedback:
                text = feedback_text(entry.value)
                if text not in texts:
                    texts.append(text)
        feedback = "\n".join(texts)
        names = [self._name_of[p] for p in parameters]
        problem = Problem(
            instruction=self.objective,
            variables=[Entry(n, value_text(p), variable_note(p)) for n, p in zip(names, parameters, strict=True)],
            feedback=[Entry("feedback", feedback)],
            parameters=dict(zip(names, parameters, strict=True)),
        )
        text = self._render(problem, budget_tokens)
        return Prompt(text, problem.parameters, feedback)
