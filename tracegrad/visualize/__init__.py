"""Pictures and reports of traces (graphviz is imported only when drawing).

The package is callable: ``tracegrad.visualize(x, ...)`` is
``tracegrad.visualize.visualize(x, ...)``. (A package attribute named ``visualize`` is
the package as soon as it is imported, so the package itself is what
``tracegrad.visualize`` can be.)
"""

import sys
import types
from typing import Any

from tracegrad.visualize.graph import render, to_dot, visualize
from tracegrad.visualize.report_html import report
from tracegrad.visualize.saved import SavedNode, SavedTrace, load_trace, save_trace


class _CallablePackage(types.ModuleType):
    """The type of this package: calling it calls ``visualize``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return visualize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["SavedNode", "SavedTrace", "load_trace", "render", "report", "save_trace", "to_dot", "visualize"]
