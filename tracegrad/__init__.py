"""tracegrad: trace a Python workflow, give feedback on its output, optimize its parameters.

Decorate functions with ``@bundle``, mark values trainable with ``node(...,
trainable=True)``, run the workflow, call ``output.backward(feedback)`` and let an
optimizer update the parameters. Heavy parts (the LLM client, JAX, Ray, graphviz)
are imported only when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from tracegrad.errors import ExecutionError, InvalidValueError, TracegradError
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

# Public names whose modules are imported on first use (they pull heavy dependencies).
_LAZY = {
    "render": ("tracegrad.visualize", "render"),
    "to_dot": ("tracegrad.visualize", "to_dot"),
    "optimizers": ("tracegrad.optimizers", None),
    "LLM": ("tracegrad.optimizers.llm", "LLM"),
    "Budget": ("tracegrad.optimizers.llm", "Budget"),
    "jax": ("tracegrad.optimizers.jax", None),
    "visualize": ("tracegrad.visualize", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tracegrad' has no attribute {name!r}")


__all__ = [
    "Array",
    "LLM",
    "Budget",
    "Bundle",
    "Choice",
    "Code",
    "ErrorNode",
    "ExecutionError",
    "Feedback",
    "Integer",
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
    "jax",
    "model",
    "no_trace",
    "node",
    "optimizers",
    "parameter",
    "read_checkpoint",
    "recording",
    "render",
    "subgraph",
    "to_dot",
    "to_networkx",
    "tracing",
    "visualize",
]
