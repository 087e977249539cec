"""The transport seam: the only place where a request becomes a response, and where
the client learns what a provider supports, how it counts tokens and what it charges.

:class:`~tracegrad.llm.litellm_transport.LiteLLMTransport` talks to real
providers. :class:`ScriptedTransport` answers from a script (for tests), and
:class:`ReplayTransport` answers from a recorded JSONL file, optionally recording what
a wrapped transport answers on a miss; these two run offline and deterministically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tracegrad._secrets import scrub
from tracegrad.llm.errors import LLMCallError, LLMError
from tracegrad.llm.request import LLMRequest, Message, TransportResponse
from tracegrad.llm.tokens import estimate_tokens, message_text

logger = logging.getLogger("tracegrad.llm")


class Transport(ABC):
    """Base class of transports: subclasses implement :meth:`complete`.

    Everything the client needs to know about a provider goes through here, so that a
    transport without a provider library (scripted, replay, a local model) never loads
    one. Defaults: ``acomplete`` runs ``complete`` in a worker thread,
    ``structured_mode`` is plain text (the safest assumption about a provider),
    ``count_tokens`` estimates from the length of the text and ``price`` is unknown.
    """

    #: Seconds a call may take when the client sets no timeout of its own.
    default_timeout: float | None = 120.0

    @abstractmethod
    def complete(self, request: LLMRequest) -> TransportResponse:
        """Answer one request (raise the provider's error on failure)."""

    async def acomplete(self, request: LLMRequest) -> TransportResponse:
        """Answer one request without blocking the event loop."""
        return await asyncio.to_thread(self.complete, request)

    def structured_mode(self, model: str, api_base: str | None) -> str:
        """The strongest structured output mode the provider supports for ``model``."""
        return "text"

    async def astructured_mode(self, model: str, api_base: str | None) -> str:
        """:meth:`structured_mode` for async code (override when it may block)."""
        return self.structured_mode(model, api_base)

    def count_tokens(self, model: str, content: str | list[Message]) -> tuple[int, bool]:
        """Tokens of a text or of chat messages for ``model``, and whether the count is an
        estimate (this default: ``tokens.CHARS_PER_TOKEN`` characters a token)."""
        return estimate_tokens(message_text(content)), True

    def price(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Dollars for these tokens with ``model``, or None when unknown (this default)."""
        return None

    @property
    def defaults(self) -> dict[str, Any]:
        """Settings sent with every request through this transport; the client puts them
        in the request, so they are part of its cache key."""
        return {}


ScriptItem = str | dict[str, Any] | BaseException | TransportResponse


def to_response(item: str | dict[str, Any] | TransportResponse, model: str) -> TransportResponse:
    """Build a response from a string or a dict such as
    ``{"text": ..., "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001}``
    (``content`` may stand for ``text``, and a ``usage`` dict for the token counts)."""
    if isinstance(item, TransportResponse):
        return item
    if isinstance(item, str):
        return TransportResponse(text=item, model=model, cost_usd=0.0)
    if not isinstance(item, dict):
        raise TypeError(f"a scripted response must be str, dict or exception, got {item!r}")
    data = dict(item)
    usage = data.pop("usage", None) or {}
    text = data.pop("text", data.pop("content", ""))
    return TransportResponse(
        text=text if isinstance(text, str) else json.dumps(text),
        model=data.pop("model", model),
        prompt_tokens=int(data.pop("prompt_tokens", usage.get("prompt_tokens", 0))),
        completion_tokens=int(data.pop("completion_tokens", usage.get("completion_tokens", 0))),
        cost_usd=data.pop("cost_usd", 0.0),
        finish_reason=data.pop("finish_reason", "stop"),
        raw={"scripted": True, **data},
    )


class ScriptedTransport(Transport):
    """Answers from a script, in order, and records every request it saw.

    ``script`` is either a list whose items are strings, dicts (see :func:`to_response`)
    or exceptions to raise, or a function ``request -> item`` called for each request.
    ``structured_mode`` sets what the fake provider claims to support.
    """

    def __init__(
        self,
        script: Iterable[ScriptItem] | Callable[[LLMRequest], ScriptItem],
        *,
        structured_mode: str = "json_schema",
    ) -> None:
        self._fn = script if callable(script) else None
        self._items = [] if callable(script) else list(script)
        self._mode = structured_mode
        self._lock = threading.Lock()
        self.requests: list[LLMRequest] = []

    def complete(self, request: LLMRequest) -> TransportResponse:
        """Record ``request`` and return (or raise) the next scripted item."""
        with self._lock:
            self.requests.append(request)
            if self._fn is not None:
                item = None
            elif self._items:
                item = self._items.pop(0)
            else:
                raise LLMError(f"ScriptedTransport ran out of responses after {len(self.requests) - 1} requests")
        if self._fn is not None:
            item = self._fn(request)
        if isinstance(item, BaseException):
            raise item
        return to_response(item, request.model)  # type: ignore[arg-type]

    async def acomplete(self, request: LLMRequest) -> TransportResponse:
        """Same as :meth:`complete` (no thread, so the order stays deterministic)."""
        return self.complete(request)

    def structured_mode(self, model: str, api_base: str | None) -> str:
        """The mode given at construction."""
        return self._mode

    @property
    def remaining(self) -> int:
        """Scripted items not used yet."""
        return len(self._items)


class _ReplayEntry(BaseModel):
    """One line of a replay file (the request is kept for people and for the mode)."""

    model_config = ConfigDict(strict=True, frozen=True)

    key: str
    request: dict[str, Any]
    response: TransportResponse


class ReplayTransport(Transport):
    """Answers from a JSONL file of recorded requests and responses, by request key.

    With ``record_from``, a request missing from the file is sent to that transport and
    its answer appended to the file (recording mode); without it, a miss raises
    :class:`LLMCallError` (kind ``replay_miss``). Tokens are counted and priced by
    ``record_from`` when there is one.

    A line that is not a replay entry (not JSON, invalid UTF-8, a field of the wrong
    type) makes the file unreadable: :class:`LLMError` names the line and what is wrong.
    Only an unfinished last line, left by a recording that was killed mid-write, is
    skipped with a warning (and cut off before the next entry is recorded). Recorded
    entries hold no credentials (see ``LLMRequest.key_data``).
    """

    def __init__(self, path: str | Path, *, record_from: Transport | None = None) -> None:
        self.path = Path(path)
        self.record_from = record_from
        self._lock = threading.Lock()
        self._entries: dict[str, TransportResponse] = {}
        self._modes: dict[str, str] = {}
        self._torn_at: int | None = None  # where an unfinished last line starts
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise LLMError(f"cannot read the replay file {self.path}: {exc}") from None
        lines = data.split(b"\n")
        offset = 0
        for n, line in enumerate(lines, 1):
            start, offset = offset, offset + len(line) + 1
            if not line.strip():
                continue
            try:
                entry = _ReplayEntry.model_validate_json(line)
            except ValidationError as exc:
                if n == len(lines):  # no newline after it: a write that did not finish
                    logger.warning("%s:%d: skipping an unfinished last line (%s)", self.path, n, _reason(exc))
                    self._torn_at = start
                    continue
                raise LLMError(f"{self.path}:{n} is not a replay entry: {_reason(exc)}") from None
            self._entries[entry.key] = entry.response
            self._note_mode(entry.request)

    def __len__(self) -> int:
        return len(self._entries)

    def _lookup(self, request: LLMRequest) -> TransportResponse | None:
        with self._lock:
            hit = self._entries.get(request.key)
        if hit is None and self.record_from is None:
            raise LLMCallError(
                f"no recorded response for request {request.key[:12]} (model "
                f"{request.model!r}) in {self.path}; record it with "
                "ReplayTransport(path, record_from=LiteLLMTransport())",
                kind="replay_miss",
            )
        return hit

    def _record(self, request: LLMRequest, response: TransportResponse) -> None:
        secrets = request.secrets()
        line = json.dumps(
            {
                "key": request.key,
                "request": request.key_data(),
                "response": scrub(json.loads(response.to_json()), secrets),
            },
            ensure_ascii=False,
            default=str,
        )
        with self._lock:
            self._entries[request.key] = response
            self._note_mode(request.key_data())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                if self._torn_at is not None:  # cut off the unfinished line first
                    f.truncate(self._torn_at)
                    self._torn_at = None
                f.write(line + "\n")

    def complete(self, request: LLMRequest) -> TransportResponse:
        """The recorded response, or (recording mode) a new one that is then saved."""
        hit = self._lookup(request)
        if hit is not None:
            return hit
        assert self.record_from is not None
        response = self.record_from.complete(request)
        self._record(request, response)
        return response

    async def acomplete(self, request: LLMRequest) -> TransportResponse:
        """Async version of :meth:`complete`."""
        hit = self._lookup(request)
        if hit is not None:
            return hit
        assert self.record_from is not None
        response = await self.record_from.acomplete(request)
        self._record(request, response)
        return response

    def _note_mode(self, request: dict[str, Any]) -> None:
        """Remember which structured output mode the recording used for a model."""
        fmt = request.get("response_format") or {}
        mode = fmt.get("type") if isinstance(fmt, dict) else None
        if mode in ("json_schema", "json_object"):
            self._modes[str(request.get("model"))] = mode

    def structured_mode(self, model: str, api_base: str | None) -> str:
        """When recording, the recorded transport's mode; when replaying, the mode the
        recording used for ``model`` (``text`` if it never used a response format)."""
        if self.record_from is not None:
            return self.record_from.structured_mode(model, api_base)
        return self._modes.get(model, "text")

    def count_tokens(self, model: str, content: str | list[Message]) -> tuple[int, bool]:
        """Counted by the recorded transport, else estimated."""
        if self.record_from is not None:
            return self.record_from.count_tokens(model, content)
        return super().count_tokens(model, content)

    def price(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Priced by the recorded transport, else unknown."""
        if self.record_from is not None:
            return self.record_from.price(model, prompt_tokens, completion_tokens)
        return None


def _reason(exc: ValidationError) -> str:
    """What is wrong with a line, in a few words (the first validation error)."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    return f"{where}: {err['msg']}" if where else str(err["msg"])
