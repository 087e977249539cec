"""The DSL surface: nodes and parameters, ``@bundle``, kinds, and modules."""

from tracegrad.nodes.array import Array
from tracegrad.nodes.bundle import BoundBundle, Bundle, bundle
from tracegrad.nodes.factory import node, parameter
from tracegrad.nodes.kinds import Choice, Code, Integer, Kind, Number, Structure, Text, infer_kind, resolve_kind
from tracegrad.nodes.module import Module, model, read_checkpoint

__all__ = [
    "Array",
    "BoundBundle",
    "Bundle",
    "Choice",
    "Code",
    "Integer",
    "Kind",
    "Module",
    "Number",
    "Structure",
    "Text",
    "bundle",
    "infer_kind",
    "model",
    "node",
    "parameter",
    "read_checkpoint",
    "resolve_kind",
]
