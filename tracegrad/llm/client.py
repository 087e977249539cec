"""``LLM``: the one client every model call in tracegrad goes through.

It resolves the model, builds the full request, serves it from the disk cache when
allowed, checks the budget, calls the transport with retries, records tokens and cost,
and turns replies into validated objects for structured calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tracegrad.llm import structured as so
from tracegrad.llm.cache import ResponseCache
from tracegrad.llm.config import API_BASE_ENV, as_messages, resolve_model
from tracegrad.llm.errors import LLMCallError, LLMConfigError
from tracegrad.llm.request import (
    Completion,
    LLMRequest,
    Message,
    TokenUsage,
    TransportResponse,
)
from tracegrad.llm.retry import RetryPolicy
from tracegrad.llm.structured_run import StructuredRun
from tracegrad.llm.transports import Transport
from tracegrad.llm.usage import Budget, CostEstimate, Usage

logger = logging.getLogger("tracegrad.llm")


class LLM:
    """A chat model client with retries, disk cache, accounting, budgets and structured
    output.

    ``settings`` (temperature, max_tokens, seed, top_p, stop, ...) are sent with every
    call; a call can override them. The response cache is used by default only when the
    temperature is 0 (an unset temperature means the provider's default, which samples):
    ``cache=True`` caches every request, ``cache=False`` none; a :class:`ResponseCache`
    picks the store and keeps the default rule. ``budget`` limits a run;
    pass a shared ``usage`` ledger to several clients to account (and budget) them
    together.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        transport: Transport | None = None,
        cache: bool | ResponseCache | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        budget: Budget | None = None,
        usage: Usage | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = 120.0,
        structured_mode: str | None = None,
        structured_retries: int = 1,
        **settings: Any,
    ) -> None:
        self.model = resolve_model(model)
        self.api_base = api_base or os.environ.get(API_BASE_ENV) or None
        self.api_key = api_key
        if transport is None:
            from tracegrad.llm.litellm_transport import LiteLLMTransport

            transport = LiteLLMTransport()
        self.transport = transport
        if usage is not None and budget is not None:
            raise LLMConfigError("pass the budget to the shared Usage(budget=...), not to LLM")
        self.usage = usage if usage is not None else Usage(budget)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        if structured_mode is not None and structured_mode not in so.MODES:
            raise LLMConfigError(f"structured_mode must be one of {so.MODES}")
        self.structured_mode = structured_mode
        self.structured_retries = structured_retries
        self.settings = settings
        self._cache_policy = None if isinstance(cache, ResponseCache) else cache
        self._cache: ResponseCache | None = cache if isinstance(cache, ResponseCache) else None
        self._cache_dir = cache_dir
        self._modes: dict[tuple[str, str | None], str] = {}

    def __repr__(self) -> str:
        return f"LLM(model={self.model!r}, settings={self.settings!r}, usage={self.usage!r})"

    def with_settings(self, **settings: Any) -> LLM:
        """A client like this one with some settings changed, sharing its transport,
        cache and usage ledger (so budgets and accounting stay joint)."""
        clone = object.__new__(LLM)
        clone.__dict__.update(self.__dict__)
        clone.settings = {**self.settings, **settings}
        clone._modes = self._modes
        return clone

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache (created on first use), or None when caching is off."""
        if self._cache is None and self._cache_policy is not False:
            self._cache = ResponseCache(Path(self._cache_dir) if self._cache_dir else None)
        return self._cache if self._cache_policy is not False else None

    # -- building requests -------------------------------------------------------
    def request(
        self,
        messages: str | list[Message],
        *,
        response_format: dict[str, Any] | None = None,
        sample_index: int | None = None,
        **overrides: Any,
    ) -> LLMRequest:
        """The full request a call with these arguments sends (also its cache key)."""
        params = {**self.transport.defaults, **self.settings, **overrides}
        timeout = params.pop("timeout", self.timeout)
        model = params.pop("model", self.model)
        api_base = params.pop("api_base", self.api_base)
        api_key = params.pop("api_key", self.api_key)
        response_format = params.pop("response_format", response_format)
        return LLMRequest(
            model=model,
            messages=as_messages(messages),
            params=params,
            response_format=response_format,
            api_base=api_base,
            api_key=api_key,
            sample_index=sample_index,
            timeout=timeout,
        )

    def _use_cache(self, request: LLMRequest, cache: bool | None) -> bool:
        policy = self._cache_policy if cache is None else cache
        if policy is None:
            return request.temperature == 0.0
        return bool(policy) and self._cache_policy is not False

    # -- plain calls ---------------------------------------------------------------
    def complete(
        self,
        messages: str | list[Message],
        *,
        schema: type[BaseModel] | None = None,
        cache: bool | None = None,
        fresh: bool = False,
        sample_index: int | None = None,
        repairs: int | None = None,
        **overrides: Any,
    ) -> Completion:
        """Call the model; with ``schema``, return a reply validated against it.

        ``fresh=True`` skips the cache lookup but stores the new reply; ``sample_index``
        keeps cached samples of the same request apart; ``repairs`` bounds the turns
        that show the model why its structured reply was rejected (default: the
        client's ``structured_retries``); ``overrides`` change settings for this call
        only. Raises :class:`LLMCallError`, :class:`BudgetExceeded` or
        :class:`StructuredOutputError`.
        """
        if schema is not None:
            return self._structured_sync(
                messages,
                schema,
                cache=cache,
                fresh=fresh,
                sample_index=sample_index,
                repairs=repairs,
                **overrides,
            )
        req = self.request(messages, sample_index=sample_index, **overrides)
        return self._call(req, self._use_cache(req, cache), fresh)

    async def acomplete(
        self,
        messages: str | list[Message],
        *,
        schema: type[BaseModel] | None = None,
        cache: bool | None = None,
        fresh: bool = False,
        sample_index: int | None = None,
        repairs: int | None = None,
        **overrides: Any,
    ) -> Completion:
        """Async version of :meth:`complete`."""
        if schema is not None:
            return await self._structured_async(
                messages,
                schema,
                cache=cache,
                fresh=fresh,
                sample_index=sample_index,
                repairs=repairs,
                **overrides,
            )
        req = self.request(messages, sample_index=sample_index, **overrides)
        return await self._acall(req, self._use_cache(req, cache), fresh)

    def _call(self, req: LLMRequest, use_cache: bool, fresh: bool) -> Completion:
        start = time.perf_counter()
        store = self.cache if use_cache else None
        if store is not None and not fresh:
            hit = store.get(req)
            if hit is not None:
                return self._finish(req, hit, start, cached=True, attempts=0)
        self.usage.begin_call()
        try:
            resp, attempts = self.retry.call(lambda: self.transport.complete(req))
        except BaseException:
            self.usage.end_call(ok=False)
            raise
        self._account(resp)
        if store is not None:
            store.put(req, resp)
        return self._finish(req, resp, start, cached=False, attempts=attempts)

    async def _acall(self, req: LLMRequest, use_cache: bool, fresh: bool) -> Completion:
        start = time.perf_counter()
        store = self.cache if use_cache else None
        if store is not None and not fresh:
            hit = await asyncio.to_thread(store.get, req)
            if hit is not None:
                return self._finish(req, hit, start, cached=True, attempts=0)
        self.usage.begin_call()
        try:
            resp, attempts = await self.retry.acall(lambda: self.transport.acomplete(req))
        except BaseException:
            self.usage.end_call(ok=False)
            raise
        self._account(resp)
        if store is not None:
            await asyncio.to_thread(store.put, req, resp)
        return self._finish(req, resp, start, cached=False, attempts=attempts)

    def _account(self, resp: TransportResponse) -> None:
        self.usage.end_call(
            ok=True,
            prompt_tokens=resp.prompt_tokens,
            completion_tokens=resp.completion_tokens,
            cost_usd=resp.cost_usd,
        )

    def _finish(
        self,
        req: LLMRequest,
        resp: TransportResponse,
        start: float,
        *,
        cached: bool,
        attempts: int,
    ) -> Completion:
        if cached:
            self.usage.record_cache_hit()
        done = Completion(
            text=resp.text,
            model=resp.model or req.model,
            usage=TokenUsage(resp.prompt_tokens, resp.completion_tokens),
            cost_usd=0.0 if cached else resp.cost_usd,
            cached=cached,
            latency_s=time.perf_counter() - start,
            key=req.key,
            finish_reason=resp.finish_reason,
            attempts=attempts,
            raw=resp.raw,
        )
        logger.debug(
            "llm call model=%s key=%s cached=%s tokens=%d+%d cost=%s latency=%.3fs",
            done.model,
            done.key[:12],
            cached,
            done.usage.prompt_tokens,
            done.usage.completion_tokens,
            done.cost_usd,
            done.latency_s,
        )
        return done

    # -- structured calls ------------------------------------------------------------
    def _mode_for(self, req: LLMRequest) -> str:
        if self.structured_mode is not None:
            return self.structured_mode
        where = (req.model, req.api_base)
        if where not in self._modes:
            self._modes[where] = self.transport.structured_mode(req.model, req.api_base)
        return self._modes[where]

    def _structured_sync(self, messages: str | list[Message], schema: type[BaseModel], **kw: Any) -> Completion:
        runner = StructuredRun(self, messages, schema, kw)
        while True:
            req = runner.next_request()
            try:
                done = self._call(req, runner.use_cache(req), runner.fresh)
            except LLMCallError as exc:
                runner.on_error(exc)
                continue
            result = runner.on_reply(done)
            if result is not None:
                return result

    async def _structured_async(self, messages: str | list[Message], schema: type[BaseModel], **kw: Any) -> Completion:
        if "litellm" in sys.modules:
            runner = StructuredRun(self, messages, schema, kw)
        else:  # the first call imports litellm to learn the mode: not on the event loop
            runner = await asyncio.to_thread(StructuredRun, self, messages, schema, kw)
        while True:
            req = runner.next_request()
            try:
                done = await self._acall(req, runner.use_cache(req), runner.fresh)
            except LLMCallError as exc:
                runner.on_error(exc)
                continue
            result = runner.on_reply(done)
            if result is not None:
                return result

    # -- cost projection ----------------------------------------------------------------
    def estimate_cost(
        self,
        messages: str | list[Message],
        max_completion_tokens: int | None = None,
        *,
        calls: int = 1,
    ) -> CostEstimate:
        """Project the cost of ``calls`` calls with this prompt, before making them.

        Completion tokens default to the ``max_tokens`` setting (else 1000) since the
        reply's length is unknown: the projection is an upper bound when it is set.
        """
        from tracegrad.llm.litellm_transport import count_prompt_tokens, price_tokens

        msgs = as_messages(messages)
        prompt, approximate = count_prompt_tokens(self.model, msgs)
        completion = max_completion_tokens or int(self.settings.get("max_tokens") or 1000)
        one = price_tokens(self.model, prompt, completion)
        return CostEstimate(
            model=self.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=None if one is None else one * calls,
            calls=calls,
            approximate=approximate,
        )
