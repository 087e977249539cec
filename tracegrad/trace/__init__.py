"""The trace engine: nodes, recording context, traced operators, backward and queries.

Pure Python: nothing here knows about LLMs or JAX. The layers above use the names
exported here (and ``containers.children``), not the nodes' private slots. Modules, each
importing only ones listed before it: ``context`` (per-context state), ``containers``
(which containers are looked into), ``backward`` (walks over parents and feedback),
``kind`` (the interface of parameter kinds), ``operators`` (the operators and ``Node``'s
base class that declares them), ``arguments`` (the nodes in a call's arguments, their
values, in-place changes written back), ``weak_children`` (the weak lists behind
``node.children``), ``node`` (node types and the recording of operations),
``recording`` (``apply``), ``query`` (subgraphs, the naming scheme, networkx).
"""

# The module first: the name ``recording`` of this package is the context manager.
from tracegrad.trace import recording as _recording_module  # noqa: F401
from tracegrad.trace.backward import ancestors, topological
from tracegrad.trace.containers import children
from tracegrad.trace.context import (
    Recording,
    current_reads,
    is_tracing,
    keeping_children,
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
    iter_nodes,
    serial_mark,
)
from tracegrad.trace.query import Subgraph, call_expression, node_type, subgraph, to_networkx, unique_names
from tracegrad.trace.recording import (
    acall_on_values,
    apply,
    assign,
    call_on_values,
    call_traced,
    record,
    record_error,
    resolve,
    unique_nodes,
)

__all__ = [
    "ErrorNode",
    "Feedback",
    "Node",
    "OperationNode",
    "Operator",
    "ParameterNode",
    "Recording",
    "Subgraph",
    "acall_on_values",
    "ancestors",
    "apply",
    "assign",
    "call_expression",
    "call_on_values",
    "call_traced",
    "children",
    "current_reads",
    "is_tracing",
    "iter_nodes",
    "keeping_children",
    "no_trace",
    "node_type",
    "record",
    "record_error",
    "recording",
    "resolve",
    "running_bundle",
    "serial_mark",
    "subgraph",
    "to_networkx",
    "topological",
    "tracing",
    "unique_names",
    "unique_nodes",
]
