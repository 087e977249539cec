"""``LLMJudge``: a guide that asks a model to grade an output against a rubric.

The judge calls the one model client (``tracegrad.LLM``) with a pydantic reply schema,
so its reply is validated (and repaired or asked again by the client) rather than
parsed by hand; its calls, tokens and dollars are in ``judge.llm.usage``, which
``evaluate`` and the trainer count with the rest of a run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, create_model

from tracegrad.train.data import Example
from tracegrad.train.guides import Guide, function_key

if TYPE_CHECKING:
    from tracegrad.llm import LLM

JUDGE_SYSTEM = (
    "You grade the output of a program. Read the rubric, the input, the reference answer when "
    "there is one, and the output. Give each score between 0 (fails completely) and 1 (fully "
    "meets the rubric), and feedback that says concretely what is wrong and what would fix it "
    "(an empty feedback when nothing is wrong)."
)


class Verdict(BaseModel):
    """The judge's reply: its reasoning, one score in [0, 1] and feedback."""

    reasoning: str = Field(description="how the output measures up to the rubric")
    score: float = Field(ge=0.0, le=1.0, description="0 = fails, 1 = fully meets the rubric")
    feedback: str = Field(description="what is wrong and how to fix it; empty if nothing")


class LLMJudge(Guide):
    """Grade outputs with a model: ``(score, feedback)`` from a validated reply.

    Args:
        llm: the model client (``tracegrad.LLM``); its settings and budget apply.
        rubric: what a good output is, in words.
        criteria: named criteria (name -> description) for a vector score, one score
            in [0, 1] per criterion; the default scalar is their mean (``objective=``).
        show_label: show the example's label to the judge as the reference answer.
        system: the system prompt (default ``JUDGE_SYSTEM``).
        **rules: ``failure_score``, ``success_score``, ``objective`` (see ``Guide``).
    """

    def __init__(
        self,
        llm: LLM,
        rubric: str,
        *,
        criteria: Mapping[str, str] | None = None,
        show_label: bool = True,
        system: str = JUDGE_SYSTEM,
        **rules: Any,
    ) -> None:
        super().__init__(**rules)
        self.llm = llm
        self.rubric = rubric
        self.criteria = dict(criteria) if criteria else None
        self.show_label = show_label
        self.system = system
        self.schema: type[BaseModel] = _criteria_schema(tuple(self.criteria)) if self.criteria else Verdict

    def messages(self, example: Example, output: Any) -> list[dict[str, str]]:
        """The request the judge sends for one output."""
        parts = [f"#Rubric\n{self.rubric}"]
        if self.criteria:
            parts.append("#Criteria\n" + "\n".join(f"- {k}: {v}" for k, v in self.criteria.items()))
        parts.append(f"#Input\n{_show(example.input)}")
        if self.show_label and example.label is not None:
            parts.append(f"#Reference\n{_show(example.label)}")
        parts.append(f"#Output\n{_show(output)}")
        return [{"role": "system", "content": self.system}, {"role": "user", "content": "\n\n".join(parts)}]

    def __call__(self, example: Example, output: Any) -> tuple[float | dict[str, float], str]:
        reply = self.llm.complete(self.messages(example, output), schema=self.schema).parsed
        if self.criteria:
            scores = {name: float(getattr(reply.scores, name)) for name in self.criteria}
            return scores, reply.feedback
        return float(reply.score), reply.feedback

    def cache_key(self) -> str:
        settings = {
            "model": self.llm.model,
            "settings": {k: repr(v) for k, v in sorted(self.llm.settings.items())},
            "rubric": self.rubric,
            "criteria": self.criteria,
            "show_label": self.show_label,
            "system": self.system,
            "rules": [self.failure_score, self.success_score, self._objective and function_key(self._objective)],
        }
        return f"LLMJudge:{json.dumps(settings, sort_keys=True, default=repr)}"


def _criteria_schema(names: Sequence[str]) -> type[BaseModel]:
    score = (float, Field(ge=0.0, le=1.0))
    scores = create_model("CriteriaScores", **{name: score for name in names})  # type: ignore[call-overload]
    return create_model(
        "CriteriaVerdict",
        reasoning=(str, Field(description="how the output measures up to each criterion")),
        scores=(scores, Field(description="one score in [0, 1] per criterion")),
        feedback=(str, Field(description="what is wrong and how to fix it; empty if nothing")),
    )


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=repr, ensure_ascii=False)


__all__ = ["JUDGE_SYSTEM", "LLMJudge", "Verdict"]
