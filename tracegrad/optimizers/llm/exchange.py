"""One step's conversation with the model: ask, check the reply, ask again with reasons.

``Exchange`` holds no I/O: the optimizer calls the model (sync or async) with the
messages it gives and hands back the completion or the error. That keeps the retry
logic in one place for ``step()`` and ``astep()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracegrad.llm.tokens import CHARS_PER_TOKEN, truncate
from tracegrad.llm.errors import StructuredOutputError
from tracegrad.optimizers.llm.prompts import NOTHING_USEFUL, REASK
from tracegrad.optimizers.llm.suggestions import Rejection, Reply, check, clean_text
from tracegrad.llm.usage import UsageSnapshot
from tracegrad.trace.node import ParameterNode

if TYPE_CHECKING:
    from tracegrad.optimizers.llm.optimizer import LLMOptimizer
    from tracegrad.llm.request import Completion

#: Tokens kept free in the prompt budget for a follow-up (the rejected reply and why).
REASK_TOKENS = 600
_REPLY_CHARS = int(REASK_TOKENS * CHARS_PER_TOKEN * 0.5)
_REASONS_CHARS = int(REASK_TOKENS * CHARS_PER_TOKEN * 0.4)


@dataclass
class Prompt:
    """A user message and what it exposes: the variables by name, and the values and
    feedback to remember for later steps."""

    text: str
    variables: dict[str, ParameterNode]
    feedback: str

    @property
    def values(self) -> dict[str, Any]:
        return {name: p.kind.to_json(p._data) for name, p in self.variables.items()}


class Exchange:
    """The state of one step's attempts; see the module docstring.

    ``outcome`` of the last attempt is ``accepted``, ``rejected`` (a suggested value
    failed its check), ``no_reply`` (no usable JSON) or ``done`` (the model declined
    to change anything).
    """

    schema = Reply

    def __init__(self, optimizer: LLMOptimizer, prompt: Prompt) -> None:
        self.optimizer = optimizer
        self.prompt = prompt
        self.first_messages = [
            {"role": "system", "content": optimizer.system_prompt},
            {"role": "user", "content": prompt.text},
        ]
        self.attempts = 0
        self.accepted: dict[ParameterNode, Any] = {}
        self.rejections: list[Rejection] = []
        self.outcome = ""
        self.reasoning = ""
        self.answer: str | None = None
        self.model_seconds = 0.0
        self._followup: list[dict[str, str]] = []
        self._completions: list[Completion] = []  # what this step itself spent
        # the memory records the values as they were shown, before any update
        self.values = prompt.values

    @staticmethod
    def reask_tokens(optimizer: LLMOptimizer) -> int:
        """Tokens to keep free for follow-ups (none when only one attempt is allowed)."""
        return REASK_TOKENS if optimizer.max_attempts > 1 else 0

    def next_messages(self) -> list[dict[str, str]] | None:
        """The messages of the next attempt, or None when the step is decided."""
        if self.outcome in ("accepted", "done") or self.attempts >= self.optimizer.max_attempts:
            return None
        self.attempts += 1
        messages = [*self.first_messages, *self._followup]
        self.optimizer.last_messages = messages
        return messages

    def on_reply(self, completion: Completion, seconds: float) -> None:
        """Check a parsed reply; accept it, or queue a follow-up with the reasons."""
        self.model_seconds += seconds
        self._completions.append(completion)
        reply: Reply = completion.parsed
        problem = _unusable(reply, completion, self.prompt.variables)
        if problem is not None:
            self.outcome = "no_reply"
            reason = truncate(NOTHING_USEFUL.format(reason=problem), _REASONS_CHARS)
            self._ask_again(completion.text, REASK.format(reasons=reason))
            return
        self.reasoning = clean_text(reply.reasoning)
        self.answer = None if reply.answer is None else clean_text(reply.answer)
        accepted, rejected = check(reply.suggested(self.prompt.variables), self.prompt.variables)
        if not rejected:
            self.accepted = accepted
            self.outcome = "accepted"
            return
        self.rejections.extend(rejected)
        self.outcome = "rejected"
        reasons = truncate("\n".join(r.line() for r in rejected), _REASONS_CHARS)
        self._ask_again(completion.text, REASK.format(reasons=reasons))

    def on_error(self, exc: Exception, seconds: float) -> None:
        """A reply without usable JSON leads to a follow-up; other errors are raised."""
        self.model_seconds += seconds
        if not isinstance(exc, StructuredOutputError):
            raise exc
        if exc.completion is not None:
            self._completions.append(exc.completion)
        if exc.raw_text.strip().upper().startswith("TERMINATE"):
            self.outcome = "done"  # the model says nothing should change
            return
        self.outcome = "no_reply"
        reason = truncate(NOTHING_USEFUL.format(reason=exc.reason), _REASONS_CHARS)
        self._ask_again(exc.raw_text, REASK.format(reasons=reason))

    def _ask_again(self, reply_text: str, message: str) -> None:
        self._followup = [
            {"role": "assistant", "content": clean_text(truncate(reply_text, _REPLY_CHARS))},
            {"role": "user", "content": clean_text(message)},
        ]

    def usage(self) -> UsageSnapshot:
        """Calls, tokens and cost of this step's own model calls (not of other users of a
        shared client)."""
        paid = [c for c in self._completions if not c.cached]
        return UsageSnapshot(
            calls=len(paid),
            cache_hits=len(self._completions) - len(paid),
            prompt_tokens=sum(c.usage.prompt_tokens for c in paid),
            completion_tokens=sum(c.usage.completion_tokens for c in paid),
            cost_usd=sum(c.cost_usd for c in paid if c.cost_usd is not None),
            calls_without_cost=sum(c.cost_usd is None for c in paid),
        )


_REPLY_KEYS = frozenset({"reasoning", "answer", "suggestion"})


def _unusable(reply: Reply, completion: Completion, variables: dict[str, ParameterNode]) -> str | None:
    """Why a reply that parsed is still no answer (cut off, or some other JSON object)."""
    if completion.finish_reason == "length":
        return "the reply was cut off at the length limit; answer more briefly"
    if not (reply.model_fields_set & _REPLY_KEYS) and not reply.suggested(variables):
        return 'it is not the reply asked for: it has none of the keys "reasoning", "answer", "suggestion"'
    return None
