"""The LLM side of tracegrad: one client for every model call, and the LLM optimizers.

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
from tracegrad.optimizers.llm.opro import OPRO
from tracegrad.optimizers.llm.optimizer import LLMOptimizer, LLMStepReport
from tracegrad.optimizers.llm.optoprime import OptoPrime
from tracegrad.optimizers.llm.problem import Problem, build_problem
from tracegrad.optimizers.llm.render import render_problem
from tracegrad.optimizers.llm.request import Completion, LLMRequest, TokenUsage, TransportResponse
from tracegrad.optimizers.llm.retry import RetryPolicy
from tracegrad.optimizers.llm.structured import extract_json, parse_structured
from tracegrad.optimizers.llm.suggestions import Rejection, Reply
from tracegrad.optimizers.llm.transports import ReplayTransport, ScriptedTransport, Transport
from tracegrad.optimizers.llm.usage import Budget, CostEstimate, Usage, UsageSnapshot

__all__ = [
    "LLM",
    "LLMOptimizer",
    "LLMStepReport",
    "OPRO",
    "OptoPrime",
    "Problem",
    "Rejection",
    "Reply",
    "build_problem",
    "render_problem",
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
