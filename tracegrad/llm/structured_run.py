"""The loop of one structured call: pick the output mode, judge each reply, show the
model why a reply cannot be used and ask again, and fall back to a weaker mode when the
provider refuses a response format.

The client drives it (it makes the calls, sync or async, with its cache and ledger):
``request()`` -> call -> ``take(completion)`` (the result, or None to go round again)
or ``refused(error)`` (re-raises unless a weaker mode is worth trying).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from tracegrad.llm import structured as so
from tracegrad.llm.errors import LLMCallError, StructuredOutputError
from tracegrad.llm.request import Completion, LLMRequest, Message
from tracegrad.llm.retry import refuses_response_format
from tracegrad.llm.transports import Transport
from tracegrad.llm.usage import UsageSnapshot

logger = logging.getLogger("tracegrad.llm")

#: ``check(completion) -> reasons``: why a reply cannot be used (none: it is accepted).
Check = Callable[[Completion], Sequence[str] | None]


def parse_reasons(completion: Completion) -> list[str]:
    """The check of a call without one: a reply is usable when it parsed."""
    return [] if completion.parse_error is None else [completion.parse_error]


class StructuredModes:
    """The structured output mode per (model, api_base): what the transport says the
    provider supports, lowered when the provider refuses it. Shared by the clients made
    with ``LLM.with_settings``."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str | None], str] = {}

    def get(self, transport: Transport, model: str, api_base: str | None) -> str:
        """The mode for ``model`` (the transport is asked once per model and api_base)."""
        where = (model, api_base)
        if where not in self._known:
            self._known[where] = transport.structured_mode(model, api_base)
        return self._known[where]

    async def aget(self, transport: Transport, model: str, api_base: str | None) -> str:
        """:meth:`get` for async code (the transport's answer may need an import)."""
        where = (model, api_base)
        if where not in self._known:
            self._known[where] = await transport.astructured_mode(model, api_base)
        return self._known[where]

    def lower(self, model: str, api_base: str | None, refused: str) -> str | None:
        """Remember that the provider refused ``refused``; the next weaker mode, or None."""
        weaker = so.next_mode(refused)
        if weaker is not None:
            self._known[(model, api_base)] = weaker
        return weaker


class StructuredCall:
    """The state of one structured call: its mode, the last unusable reply and why, and
    what its turns spent.

    Args:
        build: makes the request for some messages (the client's ``request``).
        messages: the caller's messages, before the schema instructions.
        schema: the pydantic model the reply must validate against.
        mode: the structured output mode to start with.
        modes: where a refused mode is remembered.
        check: judges each reply (see ``LLM.complete``); None: it must parse.
        repairs: how many times an unusable reply is shown to the model and asked again.
        options: ``sample_index`` and setting overrides passed to ``build``.
    """

    def __init__(
        self,
        build: Callable[..., LLMRequest],
        messages: list[Message],
        schema: type[BaseModel],
        *,
        mode: str,
        modes: StructuredModes,
        check: Check | None,
        repairs: int,
        options: dict[str, Any],
    ) -> None:
        self.build = build
        self.messages = messages
        self.schema = schema
        self.mode = mode
        self.modes = modes
        self.check = check or parse_reasons
        self.repairs = max(repairs, 0)
        self.options = options
        self.turns = 0
        self.spent = UsageSnapshot()
        self.attempts = 0
        self.seconds = 0.0
        self._rejected: tuple[str, list[str]] | None = None  # the last unusable reply and why
        self._last: LLMRequest | None = None

    def request(self) -> LLMRequest:
        """The request of the next turn (schema instructions and the repair turn in)."""
        msgs = so.instruct(self.messages, self.schema, self.mode)
        if self._rejected is not None:
            msgs = so.repair_prompt(msgs, *self._rejected)
        self._last = self.build(msgs, response_format=so.response_format(self.schema, self.mode), **self.options)
        return self._last

    def refused(self, exc: LLMCallError) -> None:
        """Fall back to a weaker mode if the provider refused the response format;
        re-raise anything else."""
        request = self._last
        weaker = None
        if request is not None and refuses_response_format(exc):
            weaker = self.modes.lower(request.model, request.api_base, self.mode)
        if weaker is None:
            raise exc
        logger.warning(
            "provider refused structured output mode %s for %s (%s); falling back to %s",
            self.mode,
            request.model,
            exc,
            weaker,
        )
        self.mode = weaker

    def take(self, done: Completion) -> Completion | None:
        """The completion of the call once a reply is usable, or None after queuing a
        repair turn. Raises :class:`StructuredOutputError` once the repairs are used up;
        its ``completion`` carries what every turn spent."""
        self.turns += 1
        self.spent += done.usage
        self.attempts += max(done.attempts, 1)
        self.seconds += done.latency_s
        try:
            done = replace(done, parsed=so.parse_structured(done.text, self.schema))
        except so.ParseFailure as exc:
            done = replace(done, parse_error=str(exc))
        reasons = [str(r) for r in self.check(done) or ()]
        total = replace(done, usage=self.spent, attempts=self.attempts, latency_s=self.seconds)
        if not reasons:
            return total
        if self.turns > self.repairs:
            raise StructuredOutputError(
                "; ".join(reasons),
                raw_text=done.text,
                attempts=self.turns,
                schema_name=self.schema.__name__,
                completion=total,
            )
        logger.info("structured reply rejected (%s); asking the model again", "; ".join(reasons))
        self._rejected = (done.text, reasons)
        return None
