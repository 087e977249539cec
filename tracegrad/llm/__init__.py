"""The one seam to models: the ``LLM`` client and the transports under it.

Every model call of tracegrad -- optimizers, guides, users' pipelines (``call_llm``,
a model call recorded in the trace) -- goes through ``LLM``: retries, timeouts, a disk
cache keyed on the whole request, token and cost accounting, budgets and structured
output. Transports are the narrow seam below it (litellm, the embedded local model,
scripted, replay).
Importing this package imports neither litellm nor any optimizer; litellm is loaded
by ``LiteLLMTransport`` on its first call.
"""

from tracegrad.llm.cache import ResponseCache
from tracegrad.llm.client import LLM
from tracegrad.llm.config import configured_model
from tracegrad.llm.errors import (
    BudgetExceeded,
    LLMCallError,
    LLMConfigError,
    LLMError,
    StructuredOutputError,
)
from tracegrad.llm.litellm_transport import LiteLLMTransport
from tracegrad.llm.local import LlamaServerTransport, LocalServer, LocalTransport
from tracegrad.llm.request import Completion, LLMRequest, TransportResponse
from tracegrad.llm.retry import RetryPolicy
from tracegrad.llm.settings import SAMPLING
from tracegrad.llm.traced import acall_llm, call_llm
from tracegrad.llm.transports import ReplayTransport, ScriptedTransport, Transport
from tracegrad.llm.usage import Budget, CostEstimate, Usage, UsageSnapshot

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
    "LlamaServerTransport",
    "LocalServer",
    "LocalTransport",
    "ReplayTransport",
    "ResponseCache",
    "RetryPolicy",
    "SAMPLING",
    "ScriptedTransport",
    "StructuredOutputError",
    "Transport",
    "TransportResponse",
    "Usage",
    "UsageSnapshot",
    "acall_llm",
    "call_llm",
    "configured_model",
]
