"""The real transport: any provider litellm supports, local OpenAI-compatible servers
included (``model="openai/<name>"``, ``api_base="http://localhost:8000/v1"``).

This is the only module of tracegrad that imports litellm, and only when a call, a
token count or a price is needed, so importing tracegrad stays fast. Its own retries
are turned off: the client retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from types import ModuleType
from typing import Any

from tracegrad.llm.request import LLMRequest, Message, TransportResponse
from tracegrad.llm.transports import Transport

logger = logging.getLogger("tracegrad.llm")


def import_litellm() -> ModuleType:
    """Import litellm for offline-safe use (local price map, no debug banners)."""
    # Without this litellm downloads its price map at import time.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _dump(response: Any) -> dict[str, Any]:
    try:
        data = response.model_dump()
    except Exception:  # raw access is best effort
        return {"repr": repr(response)}
    try:
        return json.loads(json.dumps(data, default=str))
    except (TypeError, ValueError):
        return {"repr": repr(response)}


def _cost(litellm: ModuleType, response: Any) -> float | None:
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception:  # unknown model or price: cost unknown, not an error
            return None
    return float(cost) if cost is not None else None


def _to_response(litellm: ModuleType, response: Any, request: LLMRequest) -> TransportResponse:
    choice = response.choices[0] if getattr(response, "choices", None) else None
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) or ""
    usage = getattr(response, "usage", None)
    return TransportResponse(
        text=text,
        model=getattr(response, "model", None) or request.model,
        # as reported, however impossible: the client checks the counts (usage.call_spend)
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cost_usd=_cost(litellm, response),
        finish_reason=getattr(choice, "finish_reason", None),
        raw=_dump(response),
    )


class LiteLLMTransport(Transport):
    """Sends requests through ``litellm.completion`` / ``litellm.acompletion``.

    ``drop_params`` lets litellm drop settings a provider does not accept (e.g. ``seed``)
    instead of failing; ``extra`` is sent with every call (e.g. provider-specific
    options) and, like every setting, is part of the cache key.
    """

    def __init__(self, *, drop_params: bool = True, extra: dict[str, Any] | None = None) -> None:
        self.drop_params = drop_params
        self.extra = dict(extra or {})

    def _call_kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **request.params,
            "model": request.model,
            "messages": request.messages,
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": self.drop_params,
        }
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        if request.api_base is not None:
            kwargs["api_base"] = request.api_base
        if request.api_key is not None:
            kwargs["api_key"] = request.api_key
        if request.timeout is not None:
            kwargs["timeout"] = request.timeout
        return kwargs

    @property
    def defaults(self) -> dict[str, Any]:
        return dict(self.extra)

    def complete(self, request: LLMRequest) -> TransportResponse:
        """One blocking call."""
        litellm = import_litellm()
        return _to_response(litellm, litellm.completion(**self._call_kwargs(request)), request)

    async def acomplete(self, request: LLMRequest) -> TransportResponse:
        """One async call."""
        litellm = import_litellm() if "litellm" in sys.modules else await asyncio.to_thread(import_litellm)
        response = await litellm.acompletion(**self._call_kwargs(request))
        return _to_response(litellm, response, request)

    def structured_mode(self, model: str, api_base: str | None) -> str:
        """``json_schema`` where litellm knows the model supports response schemas,
        ``json_object`` where the provider accepts ``response_format``, else ``text``."""
        litellm = import_litellm()
        try:
            if litellm.supports_response_schema(model=model):
                return "json_schema"
        except Exception:
            logger.debug("supports_response_schema failed for %s", model, exc_info=True)
        try:
            if "response_format" in (litellm.get_supported_openai_params(model=model) or []):
                return "json_object"
        except Exception:
            logger.debug("get_supported_openai_params failed for %s", model, exc_info=True)
        return "text"

    async def astructured_mode(self, model: str, api_base: str | None) -> str:
        """:meth:`structured_mode` without importing litellm on the event loop."""
        if "litellm" in sys.modules:
            return self.structured_mode(model, api_base)
        return await asyncio.to_thread(self.structured_mode, model, api_base)

    def count_tokens(self, model: str, content: str | list[Message]) -> tuple[int, bool]:
        """litellm's tokenizer for ``model`` (offline: bundled or cached tokenizers);
        the estimate when it has none for the model."""
        litellm = import_litellm()
        try:
            if isinstance(content, str):
                return int(litellm.token_counter(model=model, text=content)), False
            return int(litellm.token_counter(model=model, messages=content)), False
        except Exception:  # an unknown tokenizer: estimate
            return super().count_tokens(model, content)

    def price(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """From litellm's local price map; None for a model it does not price."""
        try:
            p, c = import_litellm().cost_per_token(
                model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:  # an unknown model or price: unknown, not an error
            return None
        return float(p) + float(c)
