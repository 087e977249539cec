"""``@bundle``: a Python function recorded as one operation of the trace.

Calling a bundled function runs it on the plain values of its arguments and records
one operation node whose inputs are the arguments (by name) and whose description is
the docstring. Inside a bundled function nothing is traced: nested bundles just run,
and reading ``node.data`` of a node the function was not given records that node as
an extra input, so the graph never silently loses a dependency. A node made during
the call (but a parameter) is not an input of it.

``trace_inside=True`` records the operations inside as well, as the call's inner graph
(``tracegrad.nodes.nested``): the function gets its node arguments as nodes, and the
outer trace still holds the one operation with the same inputs.

A trainable function's code that an optimizer proposed runs in the sandbox
(``tracegrad.nodes.proposed``, ``tracegrad.sandbox``); the source the user wrote runs
here, as any other bundled function.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from tracegrad.errors import ExecutionError
from tracegrad.nodes.code import (
    BundleError,
    Decorator,
    compile_function,
    forget_source,
    function_source,
    identify,
    inner_decorators,
    live_namespace,
)
from tracegrad.nodes.kinds import Code
from tracegrad.nodes.nested import InsideRun
from tracegrad.nodes.proposed import ProposedFunction
from tracegrad.sandbox.settings import Sandbox, check_policy, settings_for
from tracegrad.trace.context import current_reads, is_tracing, running_bundle
from tracegrad.trace.node import Node, Operator, ParameterNode, serial_mark
from tracegrad.trace.recording import acall_on_values, call_on_values, record, record_error, unique_nodes

P = ParamSpec("P")
R = TypeVar("R")
_INSTANCE_KEY = "__tracegrad_code__"
_MAX_COMPILED = 8


class BundleOperator(Operator):
    """The operator of a bundled function (one per compiled version of its code)."""

    __slots__ = ("method",)

    def format_call(self, arg_exprs: Any, kwarg_exprs: dict[str, str]) -> str:
        if self.method and arg_exprs:
            return "self." + super().format_call(arg_exprs[1:], kwarg_exprs)
        return super().format_call(arg_exprs, kwarg_exprs)


class Bundle(Generic[P, R]):
    """A function whose calls are recorded as operations; see ``bundle``."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        trainable: bool = False,
        trace_inside: bool = False,
        sandbox: bool | Sandbox | None = None,
    ) -> None:
        if isinstance(fn, Bundle):
            raise BundleError(f"{fn.name!r} is already bundled")
        check_policy(sandbox)
        own_name, doc, self.signature, self.is_async = identify(self, fn)
        self.fn = fn
        self.name = name or own_name
        self.description = description if description is not None else doc
        self.trainable = trainable
        self.trace_inside = trace_inside
        self.sandbox = sandbox
        self.is_method = next(iter(self.signature.parameters), None) in ("self", "cls")
        self._operator = self._make_operator(fn)
        # compiled versions by (source, sandboxed): the operator running it, or the error compiling it raised
        self._compiled: dict[tuple[str, bool], BundleOperator | BaseException] = {}
        self._lock = threading.Lock()
        self.parameter: ParameterNode | None = None
        self.decorators: tuple[Decorator, ...] = ()
        self._source: str | None = None
        if trainable:
            self.decorators = inner_decorators(fn)
            self._source = function_source(fn)
            self._compiled[(self._source, False)] = self._operator
            self.parameter = self._new_code_parameter(self._source)

    # -- code parameters ---------------------------------------------------------
    def _make_operator(self, fn: Callable[..., Any]) -> BundleOperator:
        positional = [
            p.name for p in self.signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]  # fmt: skip
        op = BundleOperator(self.name, fn, self.description, argnames=positional, source=self)
        op.method = self.is_method
        return op

    def _new_code_parameter(self, source: str) -> ParameterNode:
        return ParameterNode(
            source, Code.of(self.fn), name=f"{self.name}_code", description=f"the code of the function {self.name}"
        )

    def parameters(self) -> list[ParameterNode]:
        """The trainable parameters of this function: its code, when trainable (as the
        reference library's ``FunModule.parameters()``)."""
        return [] if self.parameter is None else [self.parameter]

    def code_parameter_for(self, instance: Any) -> ParameterNode | None:
        """The code parameter used when called on ``instance`` (each object has its own)."""
        if self.parameter is None or instance is None:
            return self.parameter
        store = getattr(instance, "__dict__", None)
        if store is None:  # no per-instance storage: share the function's parameter
            return self.parameter
        params = store.setdefault(_INSTANCE_KEY, {})
        if self.name not in params:
            params[self.name] = self._new_code_parameter(self.parameter.value)
        return params[self.name]

    def _operator_for(self, code: ParameterNode | None) -> BundleOperator | BaseException:
        """The operator running the current code (or the error compiling it raised).

        Code other than the user's own runs sandboxed, unless the settings in force
        (``sandbox=`` here, else ``tracegrad.sandboxing``) run it in-process.
        """
        if code is None:
            return self._operator
        source = code.data  # a read: records the code as an input of an enclosing bundle
        key = (source, source != self._source and self._sandboxes())
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                try:
                    compiled = self._make_operator(self._compile(source, sandboxed=key[1]))
                except Exception as exc:  # a SyntaxError or a failing definition becomes data
                    compiled = exc
                if len(self._compiled) >= _MAX_COMPILED:
                    oldest = next(iter(self._compiled))
                    del self._compiled[oldest]
                    if all(other != oldest[0] for other, _ in self._compiled):
                        forget_source(self.name, oldest[0])
                self._compiled[key] = compiled
        return compiled

    def _sandboxes(self) -> bool:
        """Whether proposed code runs sandboxed now. A ``trace_inside`` function's runs
        in-process unless ``sandbox=`` says otherwise: its inner graph is recorded here."""
        if self.trace_inside and self.sandbox is None:
            return False
        return settings_for(self.sandbox) is not None

    def _compile(self, source: str, *, sandboxed: bool) -> Callable[..., Any]:
        if not sandboxed:
            namespace = live_namespace(self.fn)
            return compile_function(source, self.fn.__name__, namespace, self.name, self.decorators)
        # only compiled here (a SyntaxError is raised now): its definition runs sandboxed
        return ProposedFunction(source, self)

    # -- calling -------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        code = self.parameter
        if code is not None and self.is_method and args:  # Class.method(obj, ...): obj's own code
            code = self.code_parameter_for(args[0])
        return self.invoke(code, args, kwargs)

    def invoke(self, code: ParameterNode | None, args: tuple, kwargs: dict) -> Any:
        """Call with an explicit code parameter; returns a node (a coroutine if async)."""
        if self.is_async:
            return self._acall(code, args, kwargs)
        outer_reads, op, parents = self._prepare(code, args, kwargs)
        if outer_reads is not None:  # inside another bundled function: just run
            outer_reads.extend(parents)
            return call_on_values(op.fn, args, kwargs)
        if self.trace_inside and is_tracing() and not _sandboxed(op):
            run = InsideRun()
            try:
                with run.active():
                    value = op.fn(*args, **kwargs)
            except Exception as exc:
                raise _failed_inside(run, op, args, kwargs, parents, exc) from exc
            return _finish_inside(run, op, args, kwargs, parents, value)
        reads: list[Node] = []
        first_serial = serial_mark()
        try:
            with running_bundle(reads):
                value = call_on_values(op.fn, args, kwargs)
        except Exception as exc:
            raise _failed(op, args, kwargs, _merge(parents, _before(reads, first_serial)), exc) from exc
        return self._finish(op, args, kwargs, parents, reads, value, first_serial)

    async def _acall(self, code: ParameterNode | None, args: tuple, kwargs: dict) -> Any:
        outer_reads, op, parents = self._prepare(code, args, kwargs)
        if outer_reads is not None:
            outer_reads.extend(parents)
            return await acall_on_values(op.fn, args, kwargs)
        if self.trace_inside and is_tracing() and not _sandboxed(op):
            run = InsideRun()
            try:
                with run.active():
                    value = await op.fn(*args, **kwargs)
            except Exception as exc:
                raise _failed_inside(run, op, args, kwargs, parents, exc) from exc
            return _finish_inside(run, op, args, kwargs, parents, value)
        reads: list[Node] = []
        first_serial = serial_mark()
        try:
            with running_bundle(reads):
                value = await acall_on_values(op.fn, args, kwargs)
        except Exception as exc:
            raise _failed(op, args, kwargs, _merge(parents, _before(reads, first_serial)), exc) from exc
        return self._finish(op, args, kwargs, parents, reads, value, first_serial)

    def _prepare(self, code: ParameterNode | None, args: tuple, kwargs: dict) -> tuple[list | None, Any, tuple]:
        # Inside another bundled function the call just runs, unless that one traces inside.
        outer_reads = current_reads() if not is_tracing() else None
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}") from None
        op = self._operator_for(code)
        parents = unique_nodes((args, kwargs))
        if code is not None:
            parents = _merge(parents, (code,))
        if isinstance(op, BaseException):
            if outer_reads is not None:
                outer_reads.extend(parents)
                raise op.with_traceback(None)
            raise record_error(self._operator, args, kwargs or None, parents, op) from op
        return outer_reads, op, parents

    def _finish(
        self, op: Operator, args: tuple, kwargs: dict, parents: tuple, reads: list, value: Any, first_serial: int
    ) -> Node:
        if isinstance(value, Node):
            if value.serial < first_serial:  # a node that existed before the call: an input
                reads.append(value)
            value = value.value
        return record(op, args, kwargs or None, _merge(parents, _before(reads, first_serial)), value)

    # A bundled function is shared by copies of what holds it, as a plain function is:
    # copying an agent or an optimizer does not fork its functions or their code.
    def __copy__(self) -> Bundle:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Bundle:
        return self

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return BoundBundle(self, instance)

    def __repr__(self) -> str:
        return f"<bundle {self.name}{' (trainable)' if self.trainable else ''}>"


class BoundBundle:
    """A bundled method bound to an object; its code parameter is the object's own."""

    __slots__ = ("bundle", "instance")

    def __init__(self, bundle: Bundle, instance: Any) -> None:
        self.bundle = bundle
        self.instance = instance

    @property
    def parameter(self) -> ParameterNode | None:
        return self.bundle.code_parameter_for(self.instance)

    def parameters(self) -> list[ParameterNode]:
        """This object's code parameter, when the method is trainable."""
        parameter = self.parameter
        return [] if parameter is None else [parameter]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.bundle.invoke(self.parameter, (self.instance, *args), kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bundle, name)

    def __repr__(self) -> str:
        return f"<bound {self.bundle!r} of {type(self.instance).__name__}>"


def _sandboxed(op: Operator) -> bool:
    """Whether ``op`` runs a proposed version in the sandbox (which records no inner graph)."""
    return isinstance(op.fn, ProposedFunction)


def _failed(op: Operator, args: tuple, kwargs: dict, parents: tuple[Node, ...], exc: Exception) -> ExecutionError:
    """The error for a failed call (an operation that failed inside reports its own cause)."""
    cause = exc.exception if isinstance(exc, ExecutionError) else exc
    return record_error(op, args, kwargs or None, parents, cause)  # type: ignore[arg-type]


def _failed_inside(
    run: InsideRun, op: Operator, args: tuple, kwargs: dict, parents: tuple[Node, ...], exc: Exception
) -> ExecutionError:
    """The error for a failed ``trace_inside`` call, keeping what was recorded inside."""
    error = _failed(op, args, kwargs, _merge(parents, run.dependencies()), exc)
    run.attach(error.node, exc.node if isinstance(exc, ExecutionError) else None)
    return error


def _finish_inside(run: InsideRun, op: Operator, args: tuple, kwargs: dict, parents: tuple, value: Any) -> Node:
    value = run.result(value)
    node = record(op, args, kwargs or None, _merge(parents, run.dependencies()), value)
    run.attach(node)
    return node


def _before(reads: list[Node], first_serial: int) -> list[Node]:
    """The nodes in ``reads`` that existed before the call, and parameters (a per-object
    code parameter is made on first use); other nodes made by the call are not inputs."""
    return [n for n in reads if n.serial < first_serial or n.trainable]


def _merge(parents: tuple[Node, ...], more: Any) -> tuple[Node, ...]:
    if not more:
        return parents
    ids = {id(p) for p in parents}
    extra = []
    for n in more:
        if id(n) not in ids:
            ids.add(id(n))
            extra.append(n)
    return (*parents, *extra)


@overload
def bundle(fn: Callable[P, R], /) -> Bundle[P, R]: ...
@overload
def bundle(
    *,
    name: str | None = None,
    description: str | None = None,
    trainable: bool = False,
    trace_inside: bool = False,
    sandbox: bool | Sandbox | None = None,
) -> Callable[[Callable[P, R]], Bundle[P, R]]: ...
def bundle(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    trainable: bool = False,
    trace_inside: bool = False,
    sandbox: bool | Sandbox | None = None,
) -> Any:
    """Record each call of the decorated function as one operation of the trace.

    Works on sync and async functions, on methods, and on any other callable (a
    ``functools.partial`` is named after the function it calls, a callable object after
    its class). ``description`` defaults to the docstring. An exception inside the
    function (a syntax error in new code included) becomes an error node, raised as
    ``tracegrad.ExecutionError`` carrying it.

    ``trainable=True`` makes the function's source a code parameter (``.parameter``):
    later calls run its current value, whose signature must stay the same. It needs a
    function written with ``def``. Decorators written under ``@bundle`` are applied to
    every new version as well, so they keep working after an update; each must wrap
    with ``functools.wraps`` and be a name, a dotted name or a call of one with
    constant arguments (called again per version). Any other decorator under it is
    refused with a ``BundleError`` naming it: put such a decorator above ``@bundle``,
    where it wraps the bundle and is never recompiled.

    Code other than the source the user wrote (a version an optimizer proposed) runs
    in the sandbox (docs/sandbox.md): a process of its own, with limits, whose every
    way of ending becomes an error node. ``sandbox``: None follows
    ``tracegrad.sandboxing(...)`` (on by default; a ``trace_inside`` function's code
    runs in-process, to record its inner graph), False runs it here (trusted code),
    True sandboxes it always, a ``tracegrad.Sandbox`` gives it its own limits. Its
    arguments and result cross by pickling; its changes to them stay in its process.

    ``trace_inside=True`` records the operations inside the function too, as the inner
    graph of its call (``tracegrad.nodes.nested.inner_graph(node)``; the reference
    library's ``traceable_code``): the function is given its node arguments as nodes
    (plain values stay plain), bundles it calls are recorded inside, and optimizers
    can show the inner steps that led from a parameter to the result. The outer trace
    still holds one operation with the same inputs as without it, and nothing inside
    is recorded when the call is not traced (inside another bundle, under
    ``no_trace``, or replayed by the JAX optimizer): then the function gets plain
    values, so it should work on both.
    """

    def wrap(f: Callable[P, R]) -> Bundle[P, R]:
        return Bundle(
            f, name=name, description=description, trainable=trainable, trace_inside=trace_inside, sandbox=sandbox
        )

    return wrap if fn is None else wrap(fn)
