"""``RayExecutor``: run the items of a batch as Ray tasks, on this machine or a cluster.

Needs the ``ray`` extra (``pip install 'tracegrad[ray]'``); Ray is imported only when
an executor is made, so ``import tracegrad.train`` never imports it.

How a batch runs. ``map(fn, items)`` pickles ``fn`` -- and with it the model, its
parameters at their current values, the guide -- once (``tracegrad.trace.transfer.
send``) and puts it in Ray's object store; each item is then one call on a pool of
threaded actors (``concurrency`` calls in flight in all), so IO-bound work such as model
calls overlaps even on two CPUs. A worker loads a batch's payload once and runs every
item it gets on that copy, so it runs exactly the driver's candidate.

What comes back. Each item's ``Outcome`` is pickled back with its trace. Objects that
came from the payload (the parameters, bundled functions, operators, classes) arrive
as the driver's own objects, other parameters are matched by name (``parameters=``),
and the received nodes get fresh serial numbers: ``backward`` on a returned output
reaches the driver's parameters, and optimizers see one graph, as with
``LocalExecutor``. What a worker changes in its copy of the payload (a scripted
transport's queue, a cache object) stays on the worker -- except the usage ledgers.

Usage and budgets. Each item's reply says what each ``Usage`` ledger of the payload
spent on it (counted with ``track_usage``, so items that run at once on one worker are
told apart; calls made on threads started without the item's context are reported with
the worker's next reply), and the driver adds it to its own ledger (``Usage.add``) before
the item's outcome is handed on: ``evaluate``'s spend and the driver's ledgers count the
workers' calls exactly, as with ``LocalExecutor``. A budget is checked per batch: a
worker's copy of a ledger starts from the driver's totals as of the batch, so within one
batch each worker may spend up to what was left; once the driver's ledger reaches a
limit, its next call and the next batch are refused (``BudgetExceeded``). The spend of
an item whose worker dies is lost.

Your own code on a cluster. Functions and classes are pickled by reference when their
module can be imported on the workers, by value otherwise. ``__main__`` always travels by
value, and so does, by default, the module that made the executor (a script, a notebook,
a test module); name others with ``by_value=[module, ...]`` (a test suite's ``conftest``,
say). Code a worker cannot load fails every item, as data. On a real cluster, modules
that are imported by reference must be installed on the workers, e.g. with
``init_kwargs={"runtime_env": {"py_modules": [my_package]}}`` or ``{"working_dir": "."}``.
A parameter held by such a module is the worker's own copy, with the value it had when
imported: keep parameters on the model (or send their module by value).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
import traceback as _traceback
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, TypeVar

from tracegrad.errors import TracegradError
from tracegrad.trace import transfer
from tracegrad.trace.context import TRACING
from tracegrad.trace.node import ParameterNode
from tracegrad.train.executors import Executor, OnResult, Outcome

T = TypeVar("T")
R = TypeVar("R")
_KEEP_BATCHES = 4  # payloads a worker keeps loaded (concurrent map calls)


def _ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ImportError("RayExecutor needs Ray: pip install 'tracegrad[ray]'") from None
    return ray


class RayExecutor(Executor):
    """Runs items on Ray workers, ``concurrency`` at a time; results as ``LocalExecutor``'s.

    Args:
        address: the cluster to join (``"auto"``, ``"ray://host:10001"``); None starts a
            local instance. Ignored when Ray is already initialised in this process.
        concurrency: calls in flight at once, over all workers.
        init_kwargs: more arguments for ``ray.init`` (``num_cpus``, ``runtime_env``, ...).
        workers: worker processes (actors); default: one per CPU of the cluster, at most
            ``concurrency``. Each runs its share of ``concurrency`` calls on threads, and
            they are spread over the cluster's nodes.
        cpus_per_worker: the CPUs Ray reserves for each worker: a fraction by default,
            as model calls mostly wait (so other executors and tasks still fit); 1 or
            more for work that computes.
        parameters: the driver's parameters received ones are matched to by name (a
            ``Module``, a mapping of names to parameters, or parameters), besides
            those found in the function sent.
        by_value: modules whose functions and classes are sent by value; default: the
            module that makes the executor (``__main__`` always is).
        start_timeout: seconds to wait for the workers to start.

    ``startup_s`` is the time Ray and the workers took to start. Ray is shut down on
    ``close()`` only if this executor started it.
    """

    in_process = False  # results are copies made in other processes ...
    returns_traces = True  # ... whose traces are relinked to this process's parameters

    def __init__(
        self,
        address: str | None = None,
        concurrency: int = 16,
        init_kwargs: Mapping[str, Any] | None = None,
        *,
        workers: int | None = None,
        cpus_per_worker: float = 0.25,
        parameters: Any = None,
        by_value: Iterable[ModuleType | str] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if cpus_per_worker < 0:
            raise ValueError(f"cpus_per_worker must not be negative, got {cpus_per_worker}")
        ray = _ray()
        self.concurrency = concurrency
        self.parameters = parameters
        self.by_value = list(by_value) if by_value is not None else _calling_module()
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        started = time.perf_counter()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, **{"include_dashboard": False, **(init_kwargs or {})})
        try:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            count = min(concurrency, workers or max(1, int(cpus)))
            threads = [concurrency // count + (i < concurrency % count) for i in range(count)]
            actor = ray.remote(_Worker)
            options = {"num_cpus": cpus_per_worker, "max_restarts": -1, "scheduling_strategy": "SPREAD"}
            self._actors = [actor.options(max_concurrency=n, **options).remote() for n in threads]
            self._slots = threads
            try:
                ray.get([a.ready.remote() for a in self._actors], timeout=start_timeout)
            except ray.exceptions.GetTimeoutError:
                raise TracegradError(
                    f"{count} Ray workers of {cpus_per_worker} CPU did not start within {start_timeout:g} s: "
                    "the cluster may lack free CPUs (see ray.available_resources())"
                ) from None
        except BaseException:
            self.close()
            raise
        self.workers = count
        self.startup_s = time.perf_counter() - started

    def __repr__(self) -> str:
        return f"RayExecutor(concurrency={self.concurrency}, workers={len(getattr(self, '_actors', ()))})"

    def map(self, fn: Callable[[T], R], items: Sequence[T], *, on_result: OnResult | None = None) -> list[Outcome[R]]:
        """One ``Outcome`` per item, in the order of the items (see ``Executor.map``)."""
        items = list(items)
        if not items:
            return []
        ray = _ray()
        actors = self._actors
        if not actors:
            raise RuntimeError("this RayExecutor is closed")
        try:
            sent = transfer.send(fn, by_value=self.by_value)
        except Exception as exc:
            raise TracegradError(
                f"RayExecutor cannot send {fn!r} to its workers: {type(exc).__name__}: {exc}. Everything the "
                "function refers to must pickle (see tracegrad.trace.transfer)"
            ) from exc
        payload = [ray.put(sent.data)]  # in a list: workers fetch it only when they lack it
        batch = uuid.uuid4().hex
        tracing_on = TRACING.get()
        named = _named_parameters(self.parameters)
        results: list[Outcome[R] | None] = [None] * len(items)
        pending: dict[Any, tuple[int, int]] = {}
        queued = iter(enumerate(items))

        def submit(worker: int) -> None:
            for index, item in queued:
                try:
                    data = transfer.dumps(item, by_value=self.by_value)
                except Exception as exc:  # an item that cannot be pickled fails alone
                    results[index] = _outcome_of(exc)
                    if on_result is not None:
                        on_result(index, results[index])  # type: ignore[arg-type]
                    continue
                ref = actors[worker].run.remote(batch, payload, data, tracing_on)
                pending[ref] = (index, worker)
                return

        try:
            for worker, slots in enumerate(self._slots):
                for _ in range(slots):
                    submit(worker)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index, worker = pending.pop(ref)
                    submit(worker)
                    results[index] = outcome = self._open(ray, sent, ref, named)
                    if on_result is not None:
                        on_result(index, outcome)
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):  # best effort: the call may have finished
                    ray.cancel(ref)
            raise
        self._warn_strays(sent.strays)
        return results  # type: ignore[return-value]

    def _open(self, ray: Any, sent: transfer.Sent, ref: Any, named: Mapping[str, ParameterNode]) -> Outcome[Any]:
        """The item's outcome, once what it spent is added to the driver's ledgers."""
        try:
            spent, data = ray.get(ref)
        except Exception as exc:  # the worker died, the call was cancelled ...
            return _outcome_of(exc)
        for ledger, amount in sent.open_reply(spent):  # ledgers and snapshots: these load
            ledger.add(amount)
        try:
            return sent.open_reply(data, named)
        except Exception as exc:  # e.g. a class the driver cannot import
            return _outcome_of(exc)

    def _warn_strays(self, strays: set[str]) -> None:
        new = sorted(strays - self._warned)
        if new:
            self._warned.update(new)
            warnings.warn(
                f"parameters {new} came back from Ray workers without a match here: their values are the "
                "workers' own and feedback on them stays on the copies. Send them with the function "
                "(on the model), by value (by_value=[their module]), or name them in parameters=.",
                RuntimeWarning,
                stacklevel=3,
            )

    def close(self) -> None:
        """Stop the workers, and Ray if this executor started it."""
        ray = _ray()
        with self._lock:
            actors, self._actors = getattr(self, "_actors", []), []
            owns, self._owns_ray = getattr(self, "_owns_ray", False), False
        if ray.is_initialized():
            for actor in actors:
                ray.kill(actor)
            if owns:
                ray.shutdown()


class _Worker:
    """A Ray actor: keeps the last payloads it loaded and runs items on them."""

    def __init__(self) -> None:
        self._batches: OrderedDict[str, tuple[transfer.Received, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def ready(self) -> int:
        return os.getpid()

    def run(self, batch: str, payload: list[Any], item: bytes, tracing_on: bool) -> tuple[bytes, bytes]:
        """Run the batch's function on one item: what it spent and its outcome, pickled."""
        try:
            received, ledgers = self._payload(batch, payload[0])
        except Exception as exc:  # e.g. a module the worker cannot import
            return transfer.dumps(()), transfer.dumps(_outcome_of(exc, "the worker could not load the function: "))
        outcome, tracked = contextvars.Context().run(_run_one, received.value, item, tracing_on)
        spent = received.reply(_spent(received, ledgers, tracked))
        try:
            return spent, received.reply(outcome)
        except Exception as exc:
            fallback = _outcome_of(exc, "the result could not be sent back from the worker: ")
            return spent, received.reply(fallback)

    def _payload(self, batch: str, ref: Any) -> tuple[transfer.Received, list[Any]]:
        with self._lock:  # one thread loads a batch; the others wait for it
            loaded = self._batches.get(batch)
            if loaded is None:
                received = transfer.receive(_ray().get(ref))
                loaded = self._batches[batch] = (received, received.find(_usage().Usage))
                while len(self._batches) > _KEEP_BATCHES:
                    self._batches.popitem(last=False)
            return loaded


def _run_one(fn: Callable[[Any], Any], item: bytes, tracing_on: bool) -> tuple[Outcome[Any], dict[Any, Any]]:
    """The item's outcome and what its calls spent, per ledger (run in a fresh context)."""
    TRACING.set(tracing_on)  # the driver's setting; this is a fresh context
    with _usage().track_usage() as tracker:
        try:
            value = transfer.loads(item)
        except Exception as exc:
            return _outcome_of(exc, "the worker could not load the item: "), {}
        outcome = Outcome.capture(fn, value)
        return outcome, tracker.spent()


def _spent(received: transfer.Received, ledgers: list[Any], tracked: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """What the payload's ledgers spent on an item, with what calls outside every item
    spent since the worker's last reply (ledgers made on the worker are not the driver's)."""
    spent = {ledger: amount for ledger, amount in tracked.items() if received.holds(ledger)}
    for ledger in ledgers:
        extra = ledger.take_untracked()
        if extra != _usage().UsageSnapshot():
            spent[ledger] = spent[ledger] + extra if ledger in spent else extra
    return list(spent.items())


def _usage() -> ModuleType:
    """``tracegrad.llm.usage``, imported when a worker first runs (the driver needs none)."""
    from tracegrad.llm import usage

    return usage


def _outcome_of(exc: BaseException, context: str = "") -> Outcome[Any]:
    text = "".join(_traceback.format_exception(exc))
    if context:
        error: BaseException = RuntimeError(f"{context}{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return Outcome(error=error, traceback=text)
    return Outcome(error=exc, traceback=text)


def _named_parameters(source: Any) -> dict[str, ParameterNode]:
    if source is None:
        return {}
    if callable(getattr(source, "named_parameters", None)):
        return dict(source.named_parameters())
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, ParameterNode):
        return {source.name: source}
    return {p.name: p for p in source}


def _calling_module() -> list[str]:
    """The module that called into tracegrad (sent by value: workers may not import it)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "tracegrad" and not name.startswith("tracegrad."):
            return [] if name in ("__main__", "") else [name]
        frame = frame.f_back
    return []


__all__ = ["RayExecutor"]
