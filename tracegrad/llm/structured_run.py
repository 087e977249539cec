"""The loop of one structured call: pick the output mode, validate the reply, show the
model its error and ask again, and fall back to a weaker mode when the provider refuses
a response format."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tracegrad.llm import structured as so
from tracegrad.llm.errors import LLMCallError, StructuredOutputError
from tracegrad.llm.request import Completion, LLMRequest, Message

if TYPE_CHECKING:
    from tracegrad.llm.client import LLM

logger = logging.getLogger("tracegrad.llm")


class StructuredRun:
    """The state of one structured call: its mode, the rejected replies so far and why.

    The client drives it: ``next_request`` -> call -> ``on_reply`` (a validated
    completion, or None to go round again) or ``on_error`` (re-raises unless a weaker
    mode is worth trying).
    """

    def __init__(self, llm: LLM, messages: str | list[Message], schema: Any, kw: dict[str, Any]) -> None:
        self.llm = llm
        self.schema = so.check_schema(schema)
        self.cache: bool | None = kw.pop("cache", None)
        self.fresh: bool = kw.pop("fresh", False)
        self.sample_index: int | None = kw.pop("sample_index", None)
        repairs = kw.pop("repairs", None)
        self.repairs: int = llm.structured_retries if repairs is None else repairs
        self.overrides = kw
        probe = llm.request(messages, **kw)
        self.base = probe.messages
        self.where = (probe.model, probe.api_base)
        self.mode = llm._mode_for(probe)
        self.turns: list[tuple[str, str]] = []  # (rejected reply, why)
        self.attempts = 0

    def next_request(self) -> LLMRequest:
        """The request for the next attempt (schema instructions and repair turns in)."""
        msgs = so.instruct(self.base, self.schema, self.mode)
        for raw, reason in self.turns:
            msgs = so.repair_prompt(msgs, raw, reason)
        return self.llm.request(
            msgs,
            response_format=so.response_format(self.schema, self.mode),
            sample_index=self.sample_index,
            **self.overrides,
        )

    def use_cache(self, req: LLMRequest) -> bool:
        """Whether this attempt may use the cache (same rule as plain calls)."""
        return self.llm._use_cache(req, self.cache)

    def on_error(self, exc: LLMCallError) -> None:
        """Fall back to a weaker mode if the provider refused the response format (an
        error whose message is about it); re-raise anything else."""
        weaker = so.next_mode(self.mode)
        about_format = any(w in str(exc).lower() for w in ("response_format", "json", "schema", "structured"))
        if exc.kind != "bad_request" or weaker is None or not about_format:
            raise exc
        logger.warning(
            "provider refused structured output mode %s for %s (%s); falling back to %s",
            self.mode,
            self.where[0],
            exc,
            weaker,
        )
        self.mode = weaker
        self.llm._modes[self.where] = weaker

    def on_reply(self, done: Completion) -> Completion | None:
        """The completion with ``parsed`` set, or None after queuing a repair turn.

        Raises :class:`StructuredOutputError` once the repair turns are used up.
        """
        self.attempts += max(done.attempts, 1)
        try:
            parsed = so.parse_structured(done.text, self.schema)
        except so.ParseFailure as exc:
            reason = str(exc)
            if len(self.turns) >= self.repairs:
                raise StructuredOutputError(
                    reason,
                    raw_text=done.text,
                    attempts=len(self.turns) + 1,
                    schema_name=self.schema.__name__,
                    completion=done,
                ) from None
            logger.info("structured reply rejected (%s); asking the model again", reason)
            self.turns.append((done.text, reason))
            return None
        return replace(done, parsed=parsed, attempts=self.attempts)
