"""The data that crosses the transport seam: requests, responses and completions.

A request is plain JSON-able data so that it can be hashed into a cache key, written
to a replay file and compared in tests. Its key covers everything that can change the
model's answer (model, messages, every sampling setting, response format, api_base,
sample index) and nothing that cannot (api key, timeout). Credentials never enter it:
the value of every secret setting (an ``Authorization`` header, ``aws_secret_access_key``,
see ``tracegrad._secrets``) and a password in ``api_base`` are replaced by a fixed
marker, so the key, the cache rows and replay files never depend on them, and requests
that differ in any other setting still get different keys.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

from tracegrad._secrets import redact, redact_url, secret_values
from tracegrad.llm.tokens import message_text
from tracegrad.llm.usage import UsageSnapshot, call_spend

KEY_VERSION = "tracegrad-llm-v1"

Message = dict[str, Any]


def _normalize(value: Any) -> Any:
    """Turn ``value`` into plain JSON data with one spelling per meaning."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        # 0 and 0.0 mean the same temperature; NaN/inf are kept as strings.
        if not math.isfinite(value):
            return repr(value)
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_normalize(v) for v in value), key=canonical_json)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # a pydantic object
        return _normalize(model_dump(mode="json"))
    if isinstance(value, type) and callable(getattr(value, "model_json_schema", None)):  # a pydantic class
        return _normalize(json_schema(value))
    raise TypeError(f"cannot use {type(value).__name__} in an LLM request: not JSON data")


@lru_cache(maxsize=128)
def json_schema(cls: type) -> dict[str, Any]:
    """A pydantic class's JSON schema, generated once per class (generating it is slow)."""
    return cls.model_json_schema()  # type: ignore[attr-defined]


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value``: sorted keys, no spaces, normalized numbers."""
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, eq=False)
class LLMRequest:
    """One chat completion request, as the client hands it to a transport.

    ``params`` holds every setting sent to the provider (temperature, max_tokens, seed,
    top_p, stop, ...). ``sample_index`` is never sent: it only makes the cache key of an
    otherwise identical request differ, to keep several samples apart.
    """

    model: str
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)
    response_format: dict[str, Any] | None = None
    api_base: str | None = None
    sample_index: int | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = None

    def key_data(self) -> dict[str, Any]:
        """Everything that identifies the request, without secrets or timeouts."""
        return {
            "v": KEY_VERSION,
            "model": self.model,
            "messages": self.messages,
            "params": redact(self.params),
            "response_format": self.response_format,
            "api_base": None if self.api_base is None else redact_url(self.api_base),
            "sample_index": self.sample_index,
        }

    def secrets(self) -> frozenset[str]:
        """The credentials this request carries (and the environment's), to scrub from text."""
        return secret_values({"api_key": self.api_key, "api_base": self.api_base, "params": self.params})

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.key_data().items() if k != "v" and v is not None}
        return f"LLMRequest({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def key(self) -> str:
        """A stable hash of the whole request (hex SHA-256 of its canonical JSON)."""
        return hashlib.sha256(canonical_json(self.key_data()).encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def temperature(self) -> float | None:
        """The requested temperature, or None when left to the provider."""
        t = self.params.get("temperature")
        return None if t is None else float(t)


@dataclass(frozen=True)
class TransportResponse:
    """What a transport returns: the reply text and what is known about its cost."""

    text: str
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    finish_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    #: Prompt tokens the provider did not evaluate again (a prefix reused from a
    #: previous request); they are included in ``prompt_tokens``.
    cached_prompt_tokens: int = 0

    def to_json(self) -> str:
        """Serialize for the disk cache and replay files."""
        return json.dumps(asdict(self), ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> TransportResponse:
        """Inverse of :meth:`to_json` (accepts the JSON text or the decoded dict).

        Every field is type-checked; anything else (not JSON, a field of the wrong type,
        nesting over 200 deep) raises ``ValueError`` saying what is wrong.
        """
        text = data if isinstance(data, str | bytes) else json.dumps(data, default=repr)
        return _response_adapter().validate_json(text, strict=True)


@dataclass(frozen=True)
class Completion:
    """The result of one client call.

    ``usage`` is what the call spent, repair turns of a structured call included (a
    reply served from the cache spends nothing); ``cost_usd`` is its dollars, None when
    the price of the model is unknown. ``parsed`` is the validated object of a
    structured call, None for a plain call or a reply that did not parse
    (``parse_error`` then says why). ``attempts`` counts transport attempts, retries
    and repair turns included. ``request`` is the exact request of the (last) call;
    ``raw`` the provider's response as JSON data.
    """

    text: str
    model: str
    usage: UsageSnapshot
    cached: bool
    latency_s: float
    key: str
    parsed: Any = None
    parse_error: str | None = None
    finish_reason: str | None = None
    attempts: int = 1
    request: LLMRequest | None = field(default=None, repr=False, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def cost_usd(self) -> float | None:
        """Dollars this call cost: 0.0 from the cache, None when a price is unknown."""
        return self.usage.known_cost_usd

    def __str__(self) -> str:
        return self.text


@lru_cache(maxsize=1)
def _response_adapter() -> TypeAdapter[TransportResponse]:
    return TypeAdapter(TransportResponse)


def completion_of(
    req: LLMRequest,
    resp: TransportResponse,
    latency_s: float,
    *,
    cached: bool,
    attempts: int,
    price: Callable[[int, int], float | None] | None = None,
) -> Completion:
    """The completion of one answered request: a reply from the cache spends nothing.

    What the server reported is checked (``usage.call_spend``): impossible token counts
    are estimated from the text instead, an impossible price is asked of ``price``.
    """
    if cached:
        spent = UsageSnapshot(cache_hits=1)
    else:
        spent = call_spend(
            resp.prompt_tokens,
            resp.completion_tokens,
            resp.cost_usd,
            cached_prompt_tokens=resp.cached_prompt_tokens,
            prompt_chars=len(message_text(req.messages)),
            reply_chars=len(resp.text) if isinstance(resp.text, str) else 0,
            price=price,
        )
    return Completion(
        text=resp.text,
        model=resp.model or req.model,
        usage=spent,
        cached=cached,
        latency_s=latency_s,
        key=req.key,
        finish_reason=resp.finish_reason,
        attempts=attempts,
        request=req,
        raw=resp.raw,
    )
