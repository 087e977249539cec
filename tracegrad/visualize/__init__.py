"""Pictures and reports of traces (graphviz is imported only when drawing)."""

from tracegrad.visualize.graph import render, to_dot
from tracegrad.visualize.saved import SavedNode, SavedTrace, load_trace, save_trace

__all__ = ["SavedNode", "SavedTrace", "load_trace", "render", "save_trace", "to_dot"]
