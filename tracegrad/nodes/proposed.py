"""Running a version of a trainable function's code that an optimizer proposed.

Such code runs in the sandbox (``tracegrad.sandbox``) unless the settings trust it.
Even executing its definition could change the caller, so here it is only compiled;
the sandboxed process defines it and calls it. What it needs crosses by pickling
(cloudpickle, with tracegrad's rules for nodes): its arguments, and the current
values of the names it uses from the original function's closure and module. The
decorators written under ``@bundle`` are the user's code: they wrap, here, a stand-in
for the function that makes the sandboxed call.
"""

from __future__ import annotations

import ast
import dis
import gc
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import TYPE_CHECKING, Any

from tracegrad import sandbox
from tracegrad.nodes.code import Decorator, compile_source, define_function, live_namespace
from tracegrad.sandbox import Sandbox, SandboxError, settings_for
from tracegrad.trace import Node, current_reads, running_bundle, unique_nodes
from tracegrad.trace.transfer import cloudpickle, dumps, loads

if TYPE_CHECKING:
    from tracegrad.sandbox import Reply

log = logging.getLogger("tracegrad.sandbox")


class ProposedFunction:
    """A proposed version of a bundled function's code, called as the function is.

    Each call runs in a confined process of its own (``run_confined``), which defines
    the function from ``source`` in a namespace holding the current values of the
    names it uses (from the original function's closure, then its module) and calls
    it; the decorators run here, around that call, as they would in-process. Nodes
    the code reads through ``.data`` are recorded as inputs here too; changes it makes
    to its arguments, or to anything else, stay in its process. ``bundle`` is the
    bundled function whose version this is; its ``sandbox=`` setting is read at each
    call.
    """

    def __init__(self, source: str, bundle: Any) -> None:
        self.source = source
        self.label = bundle.name
        self.name = bundle.fn.__name__
        self.code = compile_source(source, self.label)  # a SyntaxError is raised here, as in-process
        self.uses = _used_names(self.code)
        self.doc = _docstring(source, self.name)
        self.original = bundle.fn
        self.decorators: tuple[Decorator, ...] = bundle.decorators
        self.policy: bool | Sandbox | None = bundle.sandbox
        self.is_async: bool = bundle.is_async
        self._local: Callable[..., Any] | None = None
        self._decorated: Callable[..., Any] | None = None
        self._warned = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # here: when trusted, when already confined, or when given JAX arrays (JAX cannot run in a fork)
        if settings_for(self.policy) is None or sandbox.inside_sandbox() or self._given_jax(args, kwargs):
            if self._local is None:
                self._local = define_function(self.code, self.name, live_namespace(self.original), self.decorators)
            return self._local(*args, **kwargs)
        if self._decorated is None:
            fn = self._stand_in()
            for decorator in reversed(self.decorators):
                fn = decorator.apply(fn)
            self._decorated = fn
        return self._decorated(*args, **kwargs)

    def _given_jax(self, args: tuple, kwargs: dict) -> bool:
        """Whether the call computes with JAX: then it runs here, as the JAX optimizer's
        replay must (to differentiate through it), and as a forked process cannot
        (JAX's threads and devices belong to the process that started them)."""
        if not _holds_jax_arrays(args, kwargs):
            return False
        if not self._warned:
            self._warned = True
            log.warning("%s() is given JAX arrays: its proposed code runs in this process, not sandboxed", self.label)
        return True

    def _stand_in(self) -> Callable[..., Any]:
        """A function that looks like this version to decorators and calls it sandboxed."""
        if self.is_async:

            async def stand_in(*args: Any, **kwargs: Any) -> Any:
                import asyncio  # only for async functions: importing it takes longer than the rest of tracegrad

                settings = settings_for(self.policy) or Sandbox()
                reply = await asyncio.to_thread(self._confined, settings, args, kwargs)
                return self._result(reply, args, kwargs)

        else:

            def stand_in(*args: Any, **kwargs: Any) -> Any:
                settings = settings_for(self.policy) or Sandbox()
                return self._result(self._confined(settings, args, kwargs), args, kwargs)

        stand_in.__name__ = stand_in.__qualname__ = self.name
        stand_in.__module__ = self.original.__module__
        stand_in.__doc__ = self.doc
        stand_in.__signature__ = inspect.signature(inspect.unwrap(self.original))  # type: ignore[attr-defined]
        return stand_in

    def _confined(self, settings: Sandbox, args: tuple, kwargs: dict) -> Reply:
        fn = inspect.unwrap(self.original)
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
        values: dict[str, Any] = {}
        for name in self.uses:
            cell = cells.get(name)
            if cell is not None and _filled(cell):
                values[name] = cell.cell_contents
            elif name in fn.__globals__:
                values[name] = fn.__globals__[name]
        call = _Call(self.source, self.label, self.name, fn.__module__, values, args, kwargs, self.is_async)
        payload = _payload(call)
        preload = (cloudpickle().__name__,)  # what loading the payload needs: imported once, by the worker
        return sandbox.run_confined(run_in_sandbox, payload, settings, label=f"{self.label}()", preload=preload)

    def _result(self, reply: Reply, args: tuple, kwargs: dict) -> Any:
        """The reply's value (or the node of this process it names), recording the reads."""
        extra = reply.extra if isinstance(reply.extra, dict) else {}
        reads = [s for s in extra.get("reads", ()) if isinstance(s, int)]
        node = extra.get("node")
        wanted = {*reads, node} if isinstance(node, int) else set(reads)
        found = self._nodes(wanted, args, kwargs) if wanted else {}
        into = current_reads()
        if into is not None:
            into.extend(found[s] for s in reads if s in found)
        if reply.error is not None:
            raise reply.error
        return found.get(node, reply.value) if isinstance(node, int) else reply.value

    def _nodes(self, serials: set[int], args: tuple, kwargs: dict) -> dict[int, Node]:
        """The nodes of this process with these serials: looked for where the code can
        reach them (the names it uses, its arguments and their attributes), then, for
        any not found there, among every object."""
        fn = inspect.unwrap(self.original)
        cells = [c.cell_contents for c in fn.__closure__ or () if _filled(c)]
        module = [v for k, v in fn.__globals__.items() if k in self.uses]
        attributes = [vars(a) for a in args if hasattr(a, "__dict__") and not isinstance(a, type)]
        roots = (cells, module, args, kwargs, attributes)
        found = {n.serial: n for n in unique_nodes(roots) if n.serial in serials}
        if len(found) < len(serials):
            for obj in gc.get_objects():
                if isinstance(obj, Node) and obj.serial in serials:
                    found.setdefault(obj.serial, obj)
        return found


@dataclass
class _Call:
    """What a sandboxed process needs to define and call a proposed version."""

    source: str
    label: str
    name: str
    module: str
    values: dict[str, Any]
    args: tuple
    kwargs: dict
    is_async: bool


def _payload(call: _Call) -> bytes:
    """``call`` pickled; a ``SandboxError`` naming the value that cannot be."""
    try:
        return dumps(call)
    except Exception:
        pass
    named = [(f"argument {i + 1}", v) for i, v in enumerate(call.args)]
    named += [(f"argument {k!r}", v) for k, v in call.kwargs.items()]
    named += [(f"{k!r}, which the code uses,", v) for k, v in call.values.items()]
    for what, value in named:
        try:
            dumps(value)
        except Exception as exc:
            raise SandboxError(
                f"{what} of {call.label}() (a {type(value).__name__}) cannot be sent to the sandbox's process "
                f"({type(exc).__name__}: {exc}); pass data that can be pickled, or run this function in-process: "
                "bundle(..., sandbox=False)",
                reason="transfer",
            ) from None
    raise SandboxError(f"the call of {call.label}() cannot be sent to the sandbox's process", reason="transfer")


def run_in_sandbox(payload: bytes) -> tuple[Any, BaseException | None, dict[str, Any]]:
    """In the sandboxed process: define the proposed version, call it, note its reads.

    Returns (value, error, extra); extra has the serials of the caller's nodes the
    call read (``reads``) and of the one it returned (``node``), if any.
    """
    call: _Call = loads(payload)
    sent = {id(n): n.serial for n in gc.get_objects() if isinstance(n, Node)}  # the caller's nodes, as copies
    reads: list[Node] = []
    value: Any = None
    error: BaseException | None = None
    try:
        with running_bundle(reads):
            namespace = _Namespace(call.values, call.module)
            fn = define_function(compile_source(call.source, call.label), call.name, namespace)
            value = fn(*call.args, **call.kwargs)
            if call.is_async:
                import asyncio

                value = asyncio.run(value)
    except BaseException as exc:
        error = exc
    extra: dict[str, Any] = {"reads": [sent[id(n)] for n in reads if id(n) in sent]}
    if isinstance(value, Node):
        if id(value) in sent:
            extra["node"] = sent[id(value)]
        value = value.value
    return value, error, extra


class _Namespace(dict):
    """The globals of a proposed version in the sandboxed process: the values sent with
    the call, then the module as the sandbox's worker had it."""

    def __init__(self, values: dict[str, Any], module: str) -> None:
        super().__init__(values)
        found = sys.modules.get(module)
        self._module = vars(found) if found is not None else {}

    def __missing__(self, key: str) -> Any:
        return self._module[key]


def _holds_jax_arrays(args: tuple, kwargs: dict) -> bool:
    """Whether an argument (or an item of one) is a JAX array or tracer."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    values = [*args, *kwargs.values()]
    for value in list(values):
        if isinstance(value, (list, tuple)):
            values.extend(value)
        elif isinstance(value, dict):
            values.extend(value.values())
    return any(isinstance(v, jax.Array) for v in values)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _docstring(source: str, name: str) -> str | None:
    """The docstring of the function ``name`` defined in ``source`` (read, not run)."""
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ast.get_docstring(node)
    return None


def _used_names(code: CodeType) -> set[str]:
    """The global names that ``code`` (and the code nested in it) reads, but those it
    defines itself at the top (its functions, imports and assignments)."""
    reads: set[str] = set()
    defines: set[str] = set()
    pending = [(code, True)]
    while pending:
        current, top = pending.pop()
        for step in dis.get_instructions(current):
            if step.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                reads.add(step.argval)
            elif top and step.opname == "STORE_NAME":
                defines.add(step.argval)
        pending.extend((c, False) for c in current.co_consts if isinstance(c, CodeType))
    return reads - defines
