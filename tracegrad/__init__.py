"""tracegrad: trace a Python workflow, give feedback on its output, optimize its parameters.

Decorate functions with ``@bundle``, mark values trainable with ``node(...,
trainable=True)``, run the workflow, call ``output.backward(feedback)`` and let an
optimizer update the parameters.

Every public name is documented here, as ``tracegrad.<name>`` (``import tracegrad as
tg; tg.OptoPrime``). Names whose modules are heavier are imported on first use; the
ones that need an extra (``JaxOptimizer`` and ``tracegrad.jax`` need JAX) are listed by
``dir(tracegrad)`` but left out of ``__all__``, so ``from tracegrad import *`` never
imports JAX, optax or litellm.
"""

from __future__ import annotations

import importlib
from typing import Any

from tracegrad.errors import ExecutionError, InvalidKindError, InvalidValueError, TracegradError
from tracegrad.nodes import (
    Array,
    Bundle,
    Choice,
    Code,
    Integer,
    Kind,
    Module,
    Number,
    Structure,
    Text,
    bundle,
    model,
    node,
    parameter,
    read_checkpoint,
)
from tracegrad.trace import (
    ErrorNode,
    Feedback,
    Node,
    OperationNode,
    ParameterNode,
    Recording,
    Subgraph,
    apply,
    is_tracing,
    no_trace,
    recording,
    subgraph,
    to_networkx,
    tracing,
)

__version__ = "0.1.0"

# Public names imported on first use: name -> (module, attribute or None for the module).
_LAZY: dict[str, tuple[str, str | None]] = {
    # the model client (no litellm until a real call is made)
    **{
        name: ("tracegrad.llm", name)
        for name in (
            "LLM",
            "Budget",
            "Usage",
            "UsageSnapshot",
            "CostEstimate",
            "Completion",
            "LLMRequest",
            "TransportResponse",
            "Transport",
            "ScriptedTransport",
            "ReplayTransport",
            "LiteLLMTransport",
            "LocalTransport",
            "LocalServer",
            "LlamaServerTransport",
            "configured_model",
            "RetryPolicy",
            "ResponseCache",
            "LLMError",
            "LLMCallError",
            "LLMConfigError",
            "BudgetExceeded",
            "StructuredOutputError",
            "call_llm",
            "acall_llm",
        )
    },
    # optimizers and their protocol
    **{name: ("tracegrad.optimizers", name) for name in ("Optimizer", "Proposal", "StepReport", "ParameterUpdate")},
    **{name: ("tracegrad.optimizers.llm", name) for name in ("LLMOptimizer", "OptoPrime", "OPRO", "OptoPrimeMulti")},
    "Hybrid": ("tracegrad.optimizers.hybrid", "Hybrid"),
    # the inside of traces
    "inner_graph": ("tracegrad.nodes.nested", "inner_graph"),
    "keeping_children": ("tracegrad.trace", "keeping_children"),
    # training over datasets
    **{
        name: ("tracegrad.train", name)
        for name in (
            "evaluate",
            "Trainer",
            "Example",
            "Evaluation",
            "ExampleResult",
            "History",
            "StepRecord",
            "Guide",
            "ExactMatch",
            "Predicate",
            "LLMJudge",
            "Stop",
            "StopAfter",
            "TargetScore",
            "NoImprovement",
            "Executor",
            "LocalExecutor",
            "Outcome",
            "EvaluationCache",
            "BestOfN",
            "Beam",
            "Pareto",
            "Spend",
        )
    },
    # run events: what the trainer and the optimizers tell their subscribers
    **{
        name: ("tracegrad.events", name)
        for name in (
            "Event",
            "RunStarted",
            "RunEnded",
            "StepStarted",
            "StepEnded",
            "Proposed",
            "Evaluated",
            "Decided",
            "BudgetExhausted",
            "ErrorRaised",
        )
    },
    # a training run in MLflow (MLflow itself is imported on the first event)
    "MLflowLogger": ("tracegrad.train.mlflow", "MLflowLogger"),
    # the sandbox that model-written code runs in
    **{
        name: ("tracegrad.sandbox", name)
        for name in ("Sandbox", "SandboxError", "SandboxSupport", "sandboxing", "sandbox_support")
    },
    "BundleError": ("tracegrad.nodes.code", "BundleError"),
    # pictures (graphviz is imported only when drawing)
    "render": ("tracegrad.visualize", "render"),
    "to_dot": ("tracegrad.visualize", "to_dot"),
    **{name: ("tracegrad.visualize", name) for name in ("save_trace", "load_trace", "SavedTrace", "SavedNode")},
    # the HTML report of a training run
    "report": ("tracegrad.visualize", "report"),
}
# Names in dir() but not in __all__: those that import an extra's heavy dependency, and
# the packages ``jax``, ``train`` and ``visualize`` (``tg.train(...)`` runs training and
# ``tg.visualize(...)`` draws a trace: those packages are callable).
_HEAVY: dict[str, tuple[str, str | None]] = {
    "JaxOptimizer": ("tracegrad.optimizers.jax", "JaxOptimizer"),
    "RayExecutor": ("tracegrad.train", "RayExecutor"),
    "jax": ("tracegrad.optimizers.jax", None),
    "train": ("tracegrad.train", None),
    "visualize": ("tracegrad.visualize", None),
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name) or _HEAVY.get(name)
    if where is None:
        raise AttributeError(f"module 'tracegrad' has no attribute {name!r}")
    module_name, attr = where
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_HEAVY})


__all__ = [
    "Array",
    "Bundle",
    "Choice",
    "Code",
    "ErrorNode",
    "ExecutionError",
    "Feedback",
    "Integer",
    "InvalidKindError",
    "InvalidValueError",
    "Kind",
    "Module",
    "Node",
    "Number",
    "OperationNode",
    "ParameterNode",
    "Recording",
    "Structure",
    "Subgraph",
    "Text",
    "TracegradError",
    "apply",
    "bundle",
    "is_tracing",
    "model",
    "no_trace",
    "node",
    "parameter",
    "read_checkpoint",
    "recording",
    "subgraph",
    "to_networkx",
    "tracing",
    *_LAZY,
]
