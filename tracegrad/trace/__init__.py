"""The trace engine: nodes, recording context, traced operators, backward and queries.

Pure Python: nothing here knows about LLMs or JAX.
"""

from tracegrad.trace import operators as _operators  # noqa: F401  (installs the traced operators)
from tracegrad.trace.backward import ancestors
from tracegrad.trace.context import (
    Recording,
    current_reads,
    is_tracing,
    no_trace,
    recording,
    running_bundle,
    tracing,
)
from tracegrad.trace.node import (
    ErrorNode,
    Feedback,
    Node,
    OperationNode,
    Operator,
    ParameterNode,
    assign,
    iter_nodes,
)
from tracegrad.trace.operators import apply
from tracegrad.trace.query import Subgraph, call_expression, node_type, subgraph, to_networkx, unique_names
from tracegrad.trace.recording import call_traced, record, record_error, resolve

__all__ = [
    "ErrorNode",
    "Feedback",
    "Node",
    "OperationNode",
    "Operator",
    "ParameterNode",
    "Recording",
    "Subgraph",
    "ancestors",
    "apply",
    "assign",
    "call_expression",
    "call_traced",
    "current_reads",
    "is_tracing",
    "iter_nodes",
    "no_trace",
    "node_type",
    "record",
    "record_error",
    "recording",
    "resolve",
    "running_bundle",
    "subgraph",
    "to_networkx",
    "tracing",
    "unique_names",
]
