"""Source code of trainable functions: extracting it, and compiling new versions."""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
from collections.abc import Callable
from typing import Any


def function_source(fn: Callable[..., Any]) -> str:
    """The source of ``fn`` without decorators, dedented."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise ValueError(
            f"trainable=True needs the source code of {getattr(fn, '__name__', fn)!r}, "
            "which is not available (defined in a REPL, by exec, or a lambda?)"
        ) from exc
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn.__name__:
            lines = source.splitlines()[node.lineno - 1 : node.end_lineno]
            return textwrap.dedent("\n".join(lines)) + "\n"
    raise ValueError(f"could not find the definition of {fn.__name__!r} in its source")


def closure_values(fn: Callable[..., Any]) -> dict[str, Any]:
    """The current values of ``fn``'s closure variables (a new version sees them as globals)."""
    cells = fn.__closure__ or ()
    values = {}
    for name, cell in zip(fn.__code__.co_freevars, cells, strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return values


def compile_function(source: str, name: str, namespace: dict[str, Any], label: str) -> Callable[..., Any]:
    """Execute ``source`` in a copy of ``namespace`` and return its function ``name``.

    Raises whatever compiling or executing the definition raises (``SyntaxError`` ...).
    The source is registered with ``linecache`` so tracebacks show its lines.
    """
    filename = f"<tracegrad:{label}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    scope = dict(namespace)
    exec(compile(source, filename, "exec"), scope)
    fn = scope.get(name)
    if not callable(fn):
        raise NameError(f"the code does not define a function named {name!r}")
    return fn
