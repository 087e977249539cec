"""The LLM side of tracegrad: one client for every model call.

Importing this package does not import litellm; it is loaded on the first real call.
"""

from tracegrad.optimizers.llm.cache import ResponseCache, default_cache_path
from tracegrad.optimizers.llm.client import LLM
from tracegrad.optimizers.llm.config import resolve_model
from tracegrad.optimizers.llm.errors import (
    BudgetExceeded,
    LLMCallError,
    LLMConfigError,
    LLMError,
    StructuredOutputError,
)
from tracegrad.optimizers.llm.litellm_transport import LiteLLMTransport
from tracegrad.optimizers.llm.request import Completion, LLMRequest, TokenUsage, TransportResponse
from tracegrad.optimizers.llm.retry import RetryPolicy
from tracegrad.optimizers.llm.structured import extract_json, parse_structured
from tracegrad.optimizers.llm.transports import ReplayTransport, ScriptedTransport, Transport
from tracegrad.optimizers.llm.usage import Budget, CostEstimate, Usage, UsageSnapshot

__all__ = [
    "LLM",
    "Budget",
    "BudgetExceeded",
    "Completion",
    "CostEstimate",
    "LLMCallError",
    "LLMConfigError",
    "LLMError",
    "LLMRequest",
    "LiteLLMTransport",
    "ReplayTransport",
    "ResponseCache",
    "RetryPolicy",
    "ScriptedTransport",
    "StructuredOutputError",
    "TokenUsage",
    "Transport",
    "TransportResponse",
    "Usage",
    "UsageSnapshot",
    "default_cache_path",
    "extract_json",
    "parse_structured",
    "resolve_model",
]
