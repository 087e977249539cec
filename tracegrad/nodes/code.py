"""Source code of trainable functions: extracting it, and compiling new versions.

The decorators written under ``@bundle`` on a trainable function are applied to each
new version too (``inner_decorators``): each must be a name or dotted name (the
decorator object is looked up once, in the scope the function is defined in) or a
call of one with constant arguments (``lru_cache(maxsize=8)``: called again for each
version, so a version gets its own decorator state), and must wrap with
``functools.wraps`` (its wrapper's ``__wrapped__`` is the function it was given), so
the stack can be checked against the function object. Any other stack is refused
when the function is decorated.

A version an optimizer proposed is only compiled here (``compile_source``): it is
defined and run in the sandbox (``tracegrad.nodes.proposed``) unless the settings say
in-process, since executing its definition could already change the caller.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import linecache
import sys
import textwrap
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from tracegrad.errors import TracegradError


class BundleError(TracegradError, TypeError, ValueError):
    """``bundle`` cannot wrap this callable as asked (a lambda made trainable, a decorator
    under ``@bundle`` that cannot be applied to new code ...); the message says why and
    what to write instead. Both a ``TypeError`` and a ``ValueError``, as Python's own
    errors for a bad argument are either."""


def identify(wrapper: Any, fn: Any) -> tuple[str, str, inspect.Signature, bool]:
    """Copy ``fn``'s metadata onto ``wrapper``; its name, description, signature and
    whether it is async.

    A function as ``functools.wraps`` would (a lambda is named "lambda"); a
    ``functools.partial`` as the function it calls; another callable object as its
    class. Raises ``BundleError`` for what is not callable or has no signature.
    """
    if not callable(fn):
        raise BundleError(f"bundle() wraps a function or another callable; got {type(fn).__name__} {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"bundle() needs a callable with a signature; {fn!r} has none ({exc})") from None
    plain = inspect.isfunction(fn) or inspect.isclass(fn) or isinstance(fn, functools.partial)
    is_async = inspect.iscoroutinefunction(fn if plain else type(fn).__call__)
    if hasattr(fn, "__name__") and not isinstance(fn, functools.partial):
        functools.update_wrapper(wrapper, fn)
        name, doc = fn.__name__, inspect.getdoc(fn) or ""
    else:
        inner = fn
        while isinstance(inner, functools.partial):
            inner = inner.func
        named = inner if hasattr(inner, "__name__") else type(inner)  # a function, or an object's class
        own = getattr(vars(named).get("__call__"), "__doc__", None) if isinstance(named, type) else None
        doc = inspect.getdoc(named) or inspect.cleandoc(own or "")
        name = named.__name__
        wrapper.__wrapped__ = fn
        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper.__module__ = getattr(named, "__module__", None)
        wrapper.__doc__ = doc or None
    return ("lambda" if name == "<lambda>" else name), doc, signature, is_async


def function_source(fn: Callable[..., Any]) -> str:
    """The source of ``fn`` without decorators, dedented."""
    source, definition = _definition(fn)
    lines = source.splitlines()[definition.lineno - 1 : definition.end_lineno]
    return textwrap.dedent("\n".join(lines)) + "\n"


def _definition(fn: Callable[..., Any]) -> tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The dedented source holding ``fn``'s ``def`` (decorators included) and that ``def``."""
    name = getattr(fn, "__name__", None)
    if not inspect.isfunction(inspect.unwrap(fn)) or name == "<lambda>":
        what = "a lambda" if name == "<lambda>" else f"{type(fn).__name__} {fn!r}"
        raise BundleError(
            f"trainable=True needs a function written with def, whose source becomes the code parameter; "
            f"got {what}: define it with def (a partial or a callable object can call such a function)"
        )
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError) as exc:
        raise BundleError(
            f"trainable=True needs the source code of {name!r}, which is not available (defined in a REPL or by exec?)"
        ) from exc
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return source, node
    raise BundleError(f"could not find the definition of {name!r} in its source")


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
    many as ``fn`` has ``__wrapped__`` layers). Raises ``BundleError`` naming a decorator
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
        raise BundleError(
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
        except (BundleError, SyntaxError):
            continue
        written = definition.decorator_list
        marks = [i for i, d in enumerate(written) if _callee_name(d) in bundle_names]
        if marks:
            texts = ", ".join("@" + ast.unparse(d) for d in written[marks[-1] + 1 :])
            raise BundleError(
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
        raise BundleError(
            f"@bundle(trainable=True) on {name!r}: the decorator @{text} under it cannot be applied to new "
            "versions of the code: only a name, a dotted name or a call of one with constant arguments can; "
            "put it above @bundle, or bind it to a name first"
        ) from None
    try:
        found = eval(compile(ast.Expression(target), "<decorator>", "eval"), *scope)  # a name lookup only
    except Exception as exc:
        raise BundleError(
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


def compile_source(source: str, label: str) -> CodeType:
    """Compile a version of the code (raises ``SyntaxError``); its lines are registered
    with ``linecache`` so tracebacks show them. Nothing in it runs."""
    filename = source_filename(label, source)
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    return compile(source, filename, "exec")


def define_function(
    code: CodeType, name: str, namespace: dict[str, Any], decorators: tuple[Decorator, ...] = ()
) -> Callable[..., Any]:
    """Execute compiled source in ``namespace``; its function ``name`` with ``decorators``
    (outermost first) applied. Raises whatever executing the definition raises."""
    exec(code, namespace)
    fn = namespace.get(name) if name in namespace else None
    if not callable(fn):
        raise NameError(f"the code does not define a function named {name!r}")
    for decorator in reversed(decorators):
        fn = decorator.apply(fn)
    return fn


def compile_function(
    source: str, name: str, namespace: dict[str, Any], label: str, decorators: tuple[Decorator, ...] = ()
) -> Callable[..., Any]:
    """Execute ``source`` in ``namespace`` and return its function ``name``, with
    ``decorators`` (outermost first) applied to it.

    Raises whatever compiling, executing the definition or decorating raises
    (``SyntaxError`` ...).
    """
    return define_function(compile_source(source, label), name, namespace, decorators)
