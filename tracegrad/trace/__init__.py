"""The trace engine: nodes, recording context, traced operators, backward and queries.

Pure Python: nothing here knows about LLMs or JAX.
"""

from tracegrad.trace import operators as _operators  # noqa: F401  (installs the traced operators)
from tracegrad.trace.backward import ancestors
from tracegrad.trace.context import Recording, is_tracing, no_trace, recording, tracing
from tracegrad.trace.node import (
    ErrorNode,
    Feedback,
    Node,
    OperationNode,
    Operator,
    ParameterNode,
    iter_nodes,
)
from tracegrad.trace.operators import apply
from tracegrad.trace.query import Subgraph, node_type, subgraph, to_networkx, unique_names
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
    "call_traced",
    "is_tracing",
    "iter_nodes",
    "no_trace",
    "node_type",
    "record",
    "record_error",
    "recording",
    "resolve",
    "subgraph",
    "to_networkx",
    "tracing",
    "unique_names",
]
