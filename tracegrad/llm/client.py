"""``LLM``: the one client every model call in tracegrad goes through.

It resolves the model, builds the full request, serves it from the disk cache when
allowed, checks the budget, calls the transport with retries, records tokens and cost,
and turns replies into validated objects for structured calls, asking the model again
(a bounded number of times) when a reply does not parse or a caller's check rejects it.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tracegrad._secrets import install_filter, redact, scrub_error, secrets_in_scope
from tracegrad.llm import structured as so
from tracegrad.llm.cache import ResponseCache
from tracegrad.llm.config import API_BASE_ENV, as_messages, default_transport, resolve_model
from tracegrad.llm.errors import LLMCallError, LLMConfigError
from tracegrad.llm.request import Completion, LLMRequest, Message, TransportResponse, completion_of
from tracegrad.llm.retry import RetryPolicy
from tracegrad.llm.settings import (
    PROVIDER_HINT,
    REQUEST_OPTIONS,
    check_call_settings,
    checked_keywords,
    merged,
    sampling_settings,
)
from tracegrad.llm.structured_run import Check, StructuredCall, StructuredModes
from tracegrad.llm.transports import Transport
from tracegrad.llm.usage import Budget, CostEstimate, Usage

logger = logging.getLogger("tracegrad.llm")
install_filter(logger)  # credentials quoted in a record (a provider's error, say) are scrubbed


class LLM:
    """A chat model client with retries, disk cache, accounting, budgets and structured
    output.

    Args:
        model: a litellm model name, or ``local`` for the embedded model
            (``local/<path>.gguf`` for another GGUF file); default:
            ``$TRACEGRAD_MODEL``, else the embedded model when installed.
        api_base: the server's URL, e.g. a local OpenAI-compatible one (default:
            ``$TRACEGRAD_API_BASE``).
        api_key: the provider key (default: the provider's usual environment variable).
        transport: how requests reach a model (default: ``LocalTransport()`` for local
            models, else ``LiteLLMTransport()``).
        cache: ``True`` caches every request, ``False`` none; by default only requests
            at temperature 0 are cached (an unset temperature is the provider's default,
            which samples). A :class:`ResponseCache` picks the store, keeping that rule.
        cache_dir: where the default cache lives (default: ``$TRACEGRAD_CACHE_DIR``).
        budget: limits of calls, tokens and dollars for this client's ledger.
        usage: a ledger shared with other clients, to account and budget them together
            (give the budget to it, not to the client).
        retry: how failed calls are retried.
        timeout: seconds per call (None: no limit; default: the transport's, 120 s for
            providers, longer for a local model, which decodes more slowly).
        structured_mode: force ``json_schema``, ``json_object`` or ``text`` for
            structured calls (default: the strongest the transport says it supports).
        structured_retries: repair turns of a structured call by default.
        temperature, top_p, max_tokens, seed, stop: the sampling settings sent with
            every call (None: left to the provider); a call can override them.
        extra: a provider's own parameters, sent with every call (e.g.
            ``{"reasoning_effort": "low"}``). They are request parameters like the
            sampling settings: part of the cache key, overridable per call.

    An unknown keyword argument is a ``TypeError`` naming the closest valid one: nothing
    unknown is sent to a provider.

    Copies (``copy.copy`` and ``copy.deepcopy`` alike) share the transport, the response
    cache, the usage ledger (so budgets and accounting stay joint), the retry policy
    and what was learnt about structured output, and have their own settings.

    Credentials (``api_key``, a password in ``api_base``, a setting or header whose name
    says key, token, secret, password, credential or auth) go to the provider only: not
    into cache keys, files, reprs, logs or errors (see ``tracegrad._secrets``).
    """

    @checked_keywords(PROVIDER_HINT)
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
        timeout: float | str | None = "default",
        structured_mode: str | None = None,
        structured_retries: int = 1,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = resolve_model(model)
        self.api_base = api_base or os.environ.get(API_BASE_ENV) or None
        self.api_key = api_key
        self.transport = transport if transport is not None else default_transport(self.model)
        if usage is not None and budget is not None:
            raise LLMConfigError("pass the budget to the shared Usage(budget=...), not to LLM")
        self.usage = usage if usage is not None else Usage(budget)
        self.retry = retry or RetryPolicy()
        if isinstance(timeout, str) and timeout != "default":
            raise LLMConfigError(f'timeout must be seconds, None (no limit) or "default", not {timeout!r}')
        self.timeout = self.transport.default_timeout if timeout == "default" else timeout
        if structured_mode is not None and structured_mode not in so.MODES:
            raise LLMConfigError(f"structured_mode must be one of {so.MODES}")
        self.structured_mode = structured_mode
        self.structured_retries = structured_retries
        sampling = sampling_settings(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, stop=stop)
        #: Every parameter sent with each call: the sampling settings and ``extra``.
        self.settings: dict[str, Any] = merged(sampling, extra, "LLM")
        self._cache_policy = None if isinstance(cache, ResponseCache) else cache
        self._cache: ResponseCache | None = cache if isinstance(cache, ResponseCache) else None
        self._cache_dir = cache_dir
        self._modes = StructuredModes()

    def __repr__(self) -> str:
        return f"LLM(model={self.model!r}, settings={redact(self.settings)!r}, usage={self.usage!r})"

    def with_settings(self, *, extra: Mapping[str, Any] | None = None, **settings: Any) -> LLM:
        """A copy of this client (see the class docstring) with some sampling settings
        or ``extra`` parameters changed; a setting given as None is removed."""
        check_call_settings("LLM.with_settings", settings)
        clone = copy.copy(self)
        for name, value in merged(settings, extra, "LLM.with_settings").items():
            if value is None:
                clone.settings.pop(name, None)
            else:
                clone.settings[name] = value
        return clone

    def __copy__(self) -> LLM:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        if self._cache_policy is not False:
            clone._cache = self.cache  # made now, so that both hold the same store
        clone.settings = dict(self.settings)
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> LLM:
        clone = self.__copy__()
        memo[id(self)] = clone
        clone.settings = copy.deepcopy(self.settings, memo)
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
        extra: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> LLMRequest:
        """The full request a call with these arguments sends (also its cache key).

        A ``sample_index`` makes the request another sample of the same one: its cache
        key differs and a ``seed`` is offset by it, so that each sample is its own draw.
        ``overrides`` are sampling settings (``SAMPLING``) and the request options
        ``model``, ``api_base``, ``api_key`` and ``timeout``; ``extra`` a provider's
        own parameters for this call.
        """
        check_call_settings("LLM.request", overrides, options=REQUEST_OPTIONS)
        params = {**self.transport.defaults, **self.settings, **merged(overrides, extra, "LLM.request")}
        timeout = params.pop("timeout", self.timeout)
        model = params.pop("model", self.model)
        api_base = params.pop("api_base", self.api_base)
        api_key = params.pop("api_key", self.api_key)
        response_format = params.pop("response_format", response_format)
        if sample_index and isinstance(params.get("seed"), int):
            params["seed"] += sample_index  # each sample its own draw, reproducibly
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

    # -- calls ----------------------------------------------------------------------------
    def complete(
        self,
        messages: str | list[Message],
        *,
        schema: type[BaseModel] | None = None,
        check: Check | None = None,
        repairs: int | None = None,
        cache: bool | None = None,
        fresh: bool = False,
        sample_index: int | None = None,
        extra: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Completion:
        """Call the model; with ``schema``, return a reply validated against it.

        A structured call judges each reply with ``check(completion)``, which returns
        the reasons the reply cannot be used (none: it is accepted). ``completion.parsed``
        is the validated object, or None when the reply did not parse
        (``completion.parse_error`` says why); without ``check``, a reply is accepted
        when it parsed. An unusable reply is shown to the model with its reasons and
        asked again, at most ``repairs`` times (default: ``structured_retries``); the
        result's ``usage`` covers every turn. ``fresh=True`` skips the cache lookup but
        stores the new reply; ``sample_index`` keeps cached samples of the same request
        apart; ``overrides`` (sampling settings, ``model``, ``api_base``, ``api_key``,
        ``timeout``) and ``extra`` (a provider's own parameters) change settings for this
        call only.

        Raises :class:`LLMCallError`, :class:`BudgetExceeded`, or
        :class:`StructuredOutputError` when no reply is usable after the repairs.
        """
        if schema is None:
            _no_check(check)
            req = self.request(messages, sample_index=sample_index, extra=extra, **overrides)
            return self._call(req, self._use_cache(req, cache), fresh)
        probe = self.request(messages, extra=extra, **overrides)
        mode = self.structured_mode or self._modes.get(self.transport, probe.model, probe.api_base)
        run = self._structured(probe, schema, mode, check, repairs, sample_index, {"extra": extra, **overrides})
        while True:
            req = run.request()
            try:
                done = self._call(req, self._use_cache(req, cache), fresh)
            except LLMCallError as exc:
                run.refused(exc)
                continue
            result = run.take(done)
            if result is not None:
                return result

    async def acomplete(
        self,
        messages: str | list[Message],
        *,
        schema: type[BaseModel] | None = None,
        check: Check | None = None,
        repairs: int | None = None,
        cache: bool | None = None,
        fresh: bool = False,
        sample_index: int | None = None,
        extra: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Completion:
        """Async version of :meth:`complete`."""
        if schema is None:
            _no_check(check)
            req = self.request(messages, sample_index=sample_index, extra=extra, **overrides)
            return await self._acall(req, self._use_cache(req, cache), fresh)
        probe = self.request(messages, extra=extra, **overrides)
        mode = self.structured_mode or await self._modes.aget(self.transport, probe.model, probe.api_base)
        run = self._structured(probe, schema, mode, check, repairs, sample_index, {"extra": extra, **overrides})
        while True:
            req = run.request()
            try:
                done = await self._acall(req, self._use_cache(req, cache), fresh)
            except LLMCallError as exc:
                run.refused(exc)
                continue
            result = run.take(done)
            if result is not None:
                return result

    def _structured(
        self,
        probe: LLMRequest,
        schema: Any,
        mode: str,
        check: Check | None,
        repairs: int | None,
        sample_index: int | None,
        overrides: dict[str, Any],
    ) -> StructuredCall:
        return StructuredCall(
            self.request,
            probe.messages,
            so.check_schema(schema),
            mode=mode,
            modes=self._modes,
            check=check,
            repairs=self.structured_retries if repairs is None else repairs,
            options={"sample_index": sample_index, **overrides},
        )

    def _call(self, req: LLMRequest, use_cache: bool, fresh: bool) -> Completion:
        start = time.perf_counter()
        store = self.cache if use_cache else None
        if store is not None and not fresh:
            hit = store.get(req)
            if hit is not None:
                return self._finish(req, hit, start, cached=True, attempts=0)
        self.usage.begin_call()
        secrets = req.secrets()
        try:
            with secrets_in_scope(secrets):
                resp, attempts = self.retry.call(lambda: self.transport.complete(req))
        except BaseException as exc:
            self.usage.end_call(None)
            scrub_error(exc, secrets)
            raise
        done = self._finish(req, resp, start, cached=False, attempts=attempts)
        self.usage.end_call(done.usage)
        if store is not None:
            store.put(req, resp)
        return done

    async def _acall(self, req: LLMRequest, use_cache: bool, fresh: bool) -> Completion:
        start = time.perf_counter()
        store = self.cache if use_cache else None
        if store is not None and not fresh:
            hit = await asyncio.to_thread(store.get, req)
            if hit is not None:
                return self._finish(req, hit, start, cached=True, attempts=0)
        self.usage.begin_call()
        secrets = req.secrets()
        try:
            with secrets_in_scope(secrets):
                resp, attempts = await self.retry.acall(lambda: self.transport.acomplete(req))
        except BaseException as exc:
            self.usage.end_call(None)
            scrub_error(exc, secrets)
            raise
        done = self._finish(req, resp, start, cached=False, attempts=attempts)
        self.usage.end_call(done.usage)
        if store is not None:
            await asyncio.to_thread(store.put, req, resp)
        return done

    def _finish(
        self, req: LLMRequest, resp: TransportResponse, start: float, *, cached: bool, attempts: int
    ) -> Completion:
        if cached:
            self.usage.record_cache_hit()
        price = functools.partial(self.transport.price, req.model)  # for an impossible reported price
        done = completion_of(req, resp, time.perf_counter() - start, cached=cached, attempts=attempts, price=price)
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

    # -- counting and cost projection -----------------------------------------------------------
    def count_tokens(self, content: str | list[Message]) -> tuple[int, bool]:
        """Tokens of a text or of messages for this client's model, and whether the count
        is an estimate (the transport counts; see ``Transport.count_tokens``)."""
        return self.transport.count_tokens(self.model, content if isinstance(content, str) else as_messages(content))

    def estimate_cost(
        self,
        messages: str | list[Message],
        max_completion_tokens: int | None = None,
        *,
        calls: int = 1,
    ) -> CostEstimate:
        """Project the cost of ``calls`` calls with this prompt, before making them.

        Tokens are counted and priced by the transport (exactly where it knows the
        model, else estimated and unknown). Completion tokens default to the
        ``max_tokens`` setting (else 1000) since the reply's length is unknown: the
        projection is an upper bound when it is set.
        """
        prompt, approximate = self.transport.count_tokens(self.model, as_messages(messages))
        completion = max_completion_tokens or int(self.settings.get("max_tokens") or 1000)
        one = self.transport.price(self.model, prompt, completion)
        return CostEstimate(
            model=self.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=None if one is None else one * calls,
            calls=calls,
            approximate=approximate,
        )


def _no_check(check: Check | None) -> None:
    if check is not None:
        raise TypeError("check judges structured replies: pass a schema with it")
