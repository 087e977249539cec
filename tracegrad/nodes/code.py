"""Source code of trainable functions: extracting it, and compiling new versions."""

from __future__ import annotations

import ast
import hashlib
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


class _LiveNamespace(dict):
    """Globals for a new version of a function: names it defines itself live here;
    everything else is looked up at call time in the original function's closure
    cells and module globals, so the new code sees their current values."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self._module = fn.__globals__
        self._cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))

    def __missing__(self, key: str) -> Any:
        cell = self._cells.get(key)
        if cell is not None:
            try:
                return cell.cell_contents
            except ValueError:  # an empty cell: fall through to the module
                pass
        return self._module[key]


def live_namespace(fn: Callable[..., Any]) -> dict[str, Any]:
    """A fresh namespace for compiling a new version of ``fn``."""
    return _LiveNamespace(fn)


def source_filename(label: str, source: str) -> str:
    """The pseudo file name a compiled version is registered under (one per version)."""
    digest = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"<tracegrad:{label}:{digest}>"


def forget_source(label: str, source: str) -> None:
    """Drop a version's lines from ``linecache`` once nothing will run it again."""
    linecache.cache.pop(source_filename(label, source), None)


def compile_function(source: str, name: str, namespace: dict[str, Any], label: str) -> Callable[..., Any]:
    """Execute ``source`` in ``namespace`` and return its function ``name``.

    Raises whatever compiling or executing the definition raises (``SyntaxError`` ...).
    The source is registered with ``linecache`` so tracebacks show its lines.
    """
    filename = source_filename(label, source)
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)
    fn = namespace.get(name) if name in namespace else None
    if not callable(fn):
        raise NameError(f"the code does not define a function named {name!r}")
    return fn
