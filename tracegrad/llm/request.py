"""The data that crosses the transport seam: requests, responses and completions.

A request is plain JSON-able data so that it can be hashed into a cache key, written
to a replay file and compared in tests. Its key covers everything that can change the
model's answer (model, messages, every sampling setting, response format, api_base,
sample index) and nothing that cannot (api key, timeout).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from tracegrad.llm.usage import UsageSnapshot

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
            "params": self.params,
            "response_format": self.response_format,
            "api_base": self.api_base,
            "sample_index": self.sample_index,
        }

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

    def to_json(self) -> str:
        """Serialize for the disk cache and replay files."""
        return json.dumps(asdict(self), ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, data: str | dict[str, Any]) -> TransportResponse:
        """Inverse of :meth:`to_json` (accepts the JSON text or the decoded dict)."""
        obj = json.loads(data) if isinstance(data, str) else dict(data)
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in obj.items() if k in names})


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


def completion_of(
    req: LLMRequest, resp: TransportResponse, latency_s: float, *, cached: bool, attempts: int
) -> Completion:
    """The completion of one answered request: a reply from the cache spends nothing."""
    if cached:
        spent = UsageSnapshot(cache_hits=1)
    else:
        spent = UsageSnapshot(
            calls=1,
            prompt_tokens=resp.prompt_tokens,
            completion_tokens=resp.completion_tokens,
            cost_usd=resp.cost_usd or 0.0,
            calls_without_cost=int(resp.cost_usd is None),
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
