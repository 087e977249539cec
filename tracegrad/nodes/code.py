"""Source code of trainable functions: extracting it, and compiling new versions.

The decorators written under ``@bundle`` on a trainable function are applied to each
new version too (``inner_decorators``): each must be a name or dotted name (the
decorator object is looked up once, in the scope the function is defined in) or a
call of one with constant arguments (``lru_cache(maxsize=8)``: called again for each
version, so a version gets its own decorator state), and must wrap with
``functools.wraps`` (its wrapper's ``__wrapped__`` is the function it was given), so
the stack can be checked against the function object. Any other stack is refused
when the function is decorated.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import linecache
import sys
import textwrap
from collections.abc import Callable
from types import FrameType
from typing import Any


def function_source(fn: Callable[..., Any]) -> str:
    """The source of ``fn`` without decorators, dedented."""
    source, definition = _definition(fn)
    lines = source.splitlines()[definition.lineno - 1 : definition.end_lineno]
    return textwrap.dedent("\n".join(lines)) + "\n"


def _definition(fn: Callable[..., Any]) -> tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The dedented source holding ``fn``'s ``def`` (decorators included) and that ``def``."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise ValueError(
            f"trainable=True needs the source code of {getattr(fn, '__name__', fn)!r}, "
            "which is not available (defined in a REPL, by exec, or a lambda?)"
        ) from exc
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn.__name__:
            return source, node
    raise ValueError(f"could not find the definition of {fn.__name__!r} in its source")


class Decorator:
    """A decorator written under ``@bundle``, applied again to each new version of the code."""

    __slots__ = ("text", "target", "args", "kwargs")

    def __init__(self, text: str, target: Any, args: tuple | None = None, kwargs: dict | None = None) -> None:
        self.text = text
        self.target = target  # the decorator, or the factory a call expression calls
        self.args = args
        self.kwargs = kwargs

    def apply(self, fn: Callable[..., Any]) -> Any:
        decorator = self.target if self.args is None else self.target(*self.args, **(self.kwargs or {}))
        return decorator(fn)

    def __repr__(self) -> str:
        return f"@{self.text}"


def inner_decorators(fn: Callable[..., Any], bundle_names: tuple[str, ...] = ("bundle",)) -> tuple[Decorator, ...]:
    """The decorators between ``@bundle`` and the ``def`` of ``fn``, outermost first.

    ``fn`` is what ``@bundle`` was given: the function, or the result of the decorators
    under it. Those are the ones written after the last decorator whose name is one of
    ``bundle_names`` (all of them when ``@bundle`` is not written on the ``def``, as
    many as ``fn`` has ``__wrapped__`` layers). Raises ``TypeError`` naming a decorator
    that cannot be applied again (see the module docstring).
    """
    layers = 0
    original = fn
    while hasattr(original, "__wrapped__"):
        original = original.__wrapped__
        layers += 1
    _, definition = _definition(original)
    name = definition.name
    _refuse_hidden_wrapper(original, name, bundle_names)
    written = definition.decorator_list
    marks = [i for i, d in enumerate(written) if _callee_name(d) in bundle_names]
    first_under = marks[-1] + 1 if marks else len(written) - layers
    under = written[first_under:] if marks or layers else []
    if len(under) != layers:
        texts = ", ".join("@" + ast.unparse(d) for d in under) or "none"
        raise TypeError(
            f"@bundle(trainable=True) on {name!r}: the decorators under it ({texts}) do not match the "
            f"{layers} wrapper(s) made with functools.wraps (__wrapped__); a decorator that returns the "
            "function unchanged, or replaces it without functools.wraps, cannot be applied to new versions "
            "of the code: put it above @bundle"
        )
    frame = _defining_frame(original)
    scope = (frame.f_globals, frame.f_locals) if frame is not None else (_LiveNamespace(original), None)
    return tuple(_decorator(d, name, scope) for d in under)


def _refuse_hidden_wrapper(fn: Callable[..., Any], name: str, bundle_names: tuple[str, ...]) -> None:
    """Raise when ``fn`` is a wrapper made without ``functools.wraps`` around a function
    whose ``def`` carries ``@bundle``: a decorator under it hid the function."""
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            held = cell.cell_contents
        except ValueError:
            continue
        if not inspect.isfunction(held) or held is fn:
            continue
        try:
            _, definition = _definition(inspect.unwrap(held))
        except (ValueError, SyntaxError):
            continue
        written = definition.decorator_list
        marks = [i for i, d in enumerate(written) if _callee_name(d) in bundle_names]
        if marks:
            texts = ", ".join("@" + ast.unparse(d) for d in written[marks[-1] + 1 :])
            raise TypeError(
                f"@bundle(trainable=True) on {definition.name!r}: a decorator under it ({texts}) replaces "
                f"the function with {name!r} without functools.wraps, so new versions of the code could not "
                "be decorated the same way: use functools.wraps in it, or put it above @bundle"
            )


def _callee_name(expr: ast.expr) -> str | None:
    target = expr.func if isinstance(expr, ast.Call) else expr
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else None


def _is_dotted(expr: ast.expr) -> bool:
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return isinstance(expr, ast.Name)


def _decorator(expr: ast.expr, name: str, scope: tuple[dict, Any]) -> Decorator:
    text = ast.unparse(expr)
    target = expr.func if isinstance(expr, ast.Call) else expr
    args: tuple | None = None
    kwargs: dict | None = None
    try:
        if not _is_dotted(target):
            raise ValueError
        if isinstance(expr, ast.Call):
            if any(k.arg is None for k in expr.keywords):
                raise ValueError
            args = tuple(ast.literal_eval(a) for a in expr.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}  # type: ignore[misc]
    except ValueError:
        raise TypeError(
            f"@bundle(trainable=True) on {name!r}: the decorator @{text} under it cannot be applied to new "
            "versions of the code: only a name, a dotted name or a call of one with constant arguments can; "
            "put it above @bundle, or bind it to a name first"
        ) from None
    try:
        found = eval(compile(ast.Expression(target), "<decorator>", "eval"), *scope)  # a name lookup only
    except Exception as exc:
        raise TypeError(
            f"@bundle(trainable=True) on {name!r}: cannot find the decorator @{text} under it again "
            f"({type(exc).__name__}: {exc}); put it above @bundle"
        ) from None
    return Decorator(text, found, args, kwargs)


def _defining_frame(fn: Callable[..., Any]) -> FrameType | None:
    """The running frame whose code defines ``fn`` (where its decorators were looked up)."""
    code = getattr(fn, "__code__", None)
    frame = sys._getframe(1)
    while frame is not None:
        if code is not None and code in frame.f_code.co_consts:
            return frame
        frame = frame.f_back
    return None


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
    """A fresh namespace for compiling a new version of ``fn`` (of the function under
    its ``functools.wraps`` decorators: its module and closure, not a wrapper's)."""
    return _LiveNamespace(inspect.unwrap(fn))


def source_filename(label: str, source: str) -> str:
    """The pseudo file name a compiled version is registered under (one per version)."""
    digest = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"<tracegrad:{label}:{digest}>"


def forget_source(label: str, source: str) -> None:
    """Drop a version's lines from ``linecache`` once nothing will run it again."""
    linecache.cache.pop(source_filename(label, source), None)


def compile_function(
    source: str, name: str, namespace: dict[str, Any], label: str, decorators: tuple[Decorator, ...] = ()
) -> Callable[..., Any]:
    """Execute ``source`` in ``namespace`` and return its function ``name``, with
    ``decorators`` (outermost first) applied to it.

    Raises whatever compiling, executing the definition or decorating raises
    (``SyntaxError`` ...). The source is registered with ``linecache`` so tracebacks
    show its lines.
    """
    filename = source_filename(label, source)
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)
    fn = namespace.get(name) if name in namespace else None
    if not callable(fn):
        raise NameError(f"the code does not define a function named {name!r}")
    for decorator in reversed(decorators):
        fn = decorator.apply(fn)
    return fn
