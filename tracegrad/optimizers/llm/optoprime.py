"""``OptoPrime``: an LLM reads the trace as a small program plus feedback, and proposes.

The PyTorch-like loop::

    opt = OptoPrime(model, llm=LLM("openai/gpt-4o-mini"))
    opt.zero_feedback()
    output = model(x)
    opt.backward(output, "too long; keep it under 20 words")
    report = opt.step()  # report.updates, report.reasoning, report.cost_usd, ...

``step()`` is ``apply(propose())``: ``propose()`` asks the model and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracegrad.optimizers.llm.optimizer import LLMOptimizer, Prompt
from tracegrad.optimizers.llm.problem import Problem, build_problem
from tracegrad.optimizers.llm.prompts import OPTOPRIME_OBJECTIVE, OPTOPRIME_SYSTEM
from tracegrad.trace import ParameterNode


def feedback_summary(problem: Problem) -> str:
    """The feedback of a problem as one text (output names added when several)."""
    if len(problem.feedback) == 1:
        return problem.feedback[0].value
    return "\n".join(f"{e.name}: {e.value}" for e in problem.feedback)


class OptoPrime(LLMOptimizer):
    """Shows the model the subgraph of the parameters as a program with its values and
    feedback (see ``tracegrad.optimizers.llm.problem``), optionally with the last
    ``memory_size`` (values, feedback) pairs, and applies its checked suggestion.

    Keyword options are those of ``LLMOptimizer``: the sampling settings
    (``temperature``, ``max_tokens``, ...) and ``extra`` go with every model call, and
    an unknown keyword is refused.
    """

    system_prompt = OPTOPRIME_SYSTEM
    default_objective = OPTOPRIME_OBJECTIVE
    default_memory_size = 0

    def problem(self) -> Problem:
        """The problem the next step would show (for inspection and tests)."""
        return build_problem(self.parameters, self.objective)

    def _prompt(self, parameters: Sequence[ParameterNode], budget_tokens: int) -> Prompt:
        problem = build_problem(parameters, self.objective)
        text = self._render(problem, budget_tokens)
        return Prompt(text, problem.parameters, feedback_summary(problem))
