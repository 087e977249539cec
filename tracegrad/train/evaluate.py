"""``evaluate``: run a workflow on every example of a dataset and score the outputs.

Examples run concurrently through an executor, each in its own tracing context. An
exception raised by the workflow becomes that example's result -- the guide's failure
score, the error as feedback, the error node kept -- never a crash of the evaluation;
only a spent budget (``BudgetExceeded``) stops it, and an exception raised by the guide
itself (a bug in the metric) is raised once every example has finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tracegrad.errors import ExecutionError
from tracegrad.trace import Node, ParameterNode, tracing
from tracegrad.train.cache import EvaluationCache, digest, jsonable, parameter_values
from tracegrad.train.data import Dataset, Example, as_examples
from tracegrad.train.executors import as_executor, keeps_traces
from tracegrad.train.guides import Guide, as_guide, score_and_feedback
from tracegrad.train.results import Evaluation, ExampleResult, Spend

Model = Callable[[Any], Any]


def evaluate(
    model: Model,
    dataset: Dataset,
    guide: Any,
    *,
    executor: Any = None,
    concurrency: int = 8,
    progress: bool = True,
    cache: EvaluationCache | None = None,
    usage: Any = None,
    parameters: Any = None,
    trace: bool = False,
    desc: str = "evaluate",
) -> Evaluation:
    """Run ``model(example.input)`` on every example and score each output with ``guide``.

    Args:
        model: the workflow, a callable ``input -> output`` (node or value), e.g. a
            ``Module`` with ``forward``.
        dataset: a sequence of examples (see ``tracegrad.train.data``).
        guide: a ``Guide`` or a function ``(example, output) -> (score, feedback)``.
        executor: runs the examples (default: a ``LocalExecutor(concurrency)``).
        concurrency: threads of the default executor.
        progress: show a progress bar.
        cache: an ``EvaluationCache``; an example already evaluated with the same
            parameter values and guide is taken from it without running anything
            (except with ``trace``: every example runs then). New results are stored.
        usage: the ``Usage`` ledger (or several) of the pipeline's model clients; the
            guide's own (``guide.llm.usage``) is added. Their spend while this ran is
            the evaluation's ``spend``.
        parameters: the parameters the cache keys on: a mapping of names to parameters,
            a list of parameters or an optimizer (default: the model's, if it is a
            ``Module``).
        trace: record the traces, so that feedback can be propagated from the results'
            nodes (off by default: scoring needs no graph).
        desc: the progress bar's label.
    """
    guide = as_guide(guide)
    examples = as_examples(dataset)
    ledgers = usage_ledgers(usage, guide)
    keys: list[str | None] = [None] * len(examples)
    results: list[ExampleResult | None] = [None] * len(examples)
    if cache is not None:
        keys = cache_keys(model, examples, guide, parameters)
        if not trace:  # a trace is only had by running
            results = [None if e is None else from_entry(i, examples[i], e) for i, e in enumerate(map(cache.get, keys))]
    todo = [i for i, r in enumerate(results) if r is None]
    hits = len(examples) - len(todo)
    before = Spend.total(ledgers)
    if todo:
        runner, owned = as_executor(executor, concurrency)
        task = ExampleTask(model, guide, trace=trace, keep=keeps_traces(runner))
        bar = _bar(progress, len(todo), desc)
        try:
            outcomes = runner.map(task, [(i, examples[i]) for i in todo], on_result=bar.on_result)
        finally:
            bar.close()
            if owned:
                runner.close()
        failure = next((o for o in outcomes if not o.ok), None)
        if failure is not None:
            raise failure.error  # type: ignore[misc]
        for i, outcome in zip(todo, outcomes, strict=True):
            result = outcome.value
            result.example = examples[i]
            results[i] = result
            if cache is not None:
                cache.put(keys[i], to_entry(result))  # type: ignore[arg-type]
    spend = Spend.total(ledgers) - before
    return Evaluation(results, spend, hits)  # type: ignore[arg-type]


class ExampleTask:
    """Runs the workflow on one ``(index, example)`` and scores it (what executors map).

    A plain object of plain parts, so executors in other processes can pickle it.
    """

    def __init__(self, model: Model, guide: Guide, *, trace: bool = False, keep: bool = True) -> None:
        self.model = model
        self.guide = guide
        self.trace = trace
        self.keep = keep

    def __call__(self, item: tuple[int, Example]) -> ExampleResult:
        index, example = item
        guide = self.guide
        with tracing(self.trace):
            try:
                out = self.model(example.input)
            except ExecutionError as err:
                raise_if_stop(err.exception)
                return self._failed(index, example, err.exception, err.node)
            except Exception as exc:
                raise_if_stop(exc)
                return self._failed(index, example, exc, None)
        value = plain(out)
        with tracing(False):
            scores, feedback = score_and_feedback(guide(example, value))
        scalar = guide.objective(scores)
        node = out if isinstance(out, Node) else None
        return ExampleResult(
            index,
            example if self.keep else Example(None),
            scalar,
            scores,
            feedback,
            output=value if self.keep else jsonable(value),
            node=node if self.keep else None,
            succeeded=guide.succeeded(scalar),
        )

    def _failed(self, index: int, example: Example, exc: BaseException, node: Node | None) -> ExampleResult:
        guide = self.guide
        text = f"{type(exc).__name__}: {exc}"
        scalar = guide.objective(guide.failure_score)
        return ExampleResult(
            index,
            example if self.keep else Example(None),
            scalar,
            guide.failure_score,
            f"The workflow raised an error: {text}",
            node=node if self.keep else None,
            error=text,
            exception=exc if self.keep else None,
            succeeded=False,
        )


def cache_keys(model: Model, examples: list[Example], guide: Guide, parameters: Any = None) -> list[str]:
    """The evaluation-cache keys of ``examples`` for the current parameter values."""
    named = named_parameters(model, parameters)
    if named is None:
        raise ValueError("the evaluation cache keys on parameter values: pass parameters= or evaluate a Module")
    values_digest = digest(parameter_values(named))
    guide_key = guide.cache_key()
    return [EvaluationCache.key(values_digest, example, guide_key) for example in examples]


def cached_results(
    model: Model, dataset: Dataset, guide: Any, cache: EvaluationCache, parameters: Any = None
) -> list[ExampleResult] | None:
    """Every example's result from the cache, or None when one is missing (nothing runs)."""
    guide = as_guide(guide)
    examples = as_examples(dataset)
    keys = cache_keys(model, examples, guide, parameters)
    found = [cache.peek(k) for k in keys]
    if any(e is None for e in found):
        return None
    return [from_entry(i, examples[i], cache.get(k)) for i, k in enumerate(keys)]  # type: ignore[arg-type]


def plain(value: Any) -> Any:
    """The plain value of a node (read without recording), else ``value``."""
    if isinstance(value, Node):
        return value.value if hasattr(type(value), "value") else value.data
    return value


_STOP: tuple[type[BaseException], ...] | None = None


def raise_if_stop(exc: BaseException) -> None:
    """Raise ``exc`` if it must stop the run rather than score an example (a spent budget)."""
    global _STOP
    if _STOP is None:
        try:
            from tracegrad.llm.errors import BudgetExceeded

            _STOP = (BudgetExceeded,)
        except ImportError:  # pragma: no cover - the client is always there
            _STOP = ()
    if isinstance(exc, _STOP):
        raise exc


def usage_ledgers(usage: Any, guide: Any = None) -> list[Any]:
    """The distinct ledgers to count: ``usage`` (one or several) and the guide's model's."""
    found: list[Any] = []
    if usage is not None:
        found.extend(usage if isinstance(usage, (list, tuple, set)) else [usage])
    judge_llm = getattr(guide, "llm", None)
    if judge_llm is not None and getattr(judge_llm, "usage", None) is not None:
        found.append(judge_llm.usage)
    unique: dict[int, Any] = {}
    for ledger in found:
        unique.setdefault(id(ledger), ledger)
    return list(unique.values())


def named_parameters(model: Any, parameters: Any = None) -> dict[str, ParameterNode] | None:
    """The parameters an evaluation depends on, by name (None when they cannot be found)."""
    source = parameters if parameters is not None else model
    names = getattr(source, "names", None)  # an optimizer
    if isinstance(names, Mapping):
        return dict(names)
    if callable(getattr(source, "named_parameters", None)):
        return dict(source.named_parameters())
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, ParameterNode):
        return {source.name: source}
    if parameters is not None and isinstance(source, Iterable):
        return {p.name: p for p in source}
    return None


def to_entry(result: ExampleResult) -> dict[str, Any]:
    """A result as cache data."""
    return {
        "score": result.score,
        "scores": result.scores,
        "feedback": result.feedback,
        "error": result.error,
        "succeeded": result.succeeded,
        "output": jsonable(result.output),
    }


def from_entry(index: int, example: Example, entry: Mapping[str, Any]) -> ExampleResult:
    return ExampleResult(
        index,
        example,
        float(entry["score"]),
        entry["scores"],
        entry["feedback"],
        output=entry.get("output"),
        error=entry.get("error"),
        succeeded=bool(entry["succeeded"]),
        cached=True,
    )


class _bar:
    """A tqdm bar moved by ``on_result`` (nothing when ``enabled`` is false)."""

    def __init__(self, enabled: bool, total: int, desc: str) -> None:
        self._tqdm = None
        self._sum = 0.0
        self._n = 0
        if enabled:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def on_result(self, index: int, outcome: Any) -> None:
        if self._tqdm is None:
            return
        if outcome.ok:
            self._sum += outcome.value.score
            self._n += 1
            self._tqdm.set_postfix(score=f"{self._sum / self._n:.3f}", refresh=False)
        self._tqdm.update(1)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


__all__ = [
    "ExampleTask",
    "Model",
    "cache_keys",
    "cached_results",
    "evaluate",
    "named_parameters",
    "plain",
    "raise_if_stop",
    "usage_ledgers",
]
