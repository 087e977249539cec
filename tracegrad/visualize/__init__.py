"""Pictures and reports of traces (graphviz is imported only when drawing)."""

from tracegrad.visualize.graph import render, to_dot

__all__ = ["render", "to_dot"]
