"""What a benchmark problem is, and the one loop that runs it on either library.

The problems are written once against a tiny adapter (:class:`Lib`): each library
supplies its own ``bundle``, nodes, parameters and optimizer step, and everything else
(the workflow, the feedback text, the success test, the timing) is this same code on
both sides. This module imports neither library, so that it also runs in the
reference library's own environment.
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Spec:
    """The declared kind of a parameter: each library turns it into its own form (a
    typed kind, or a constraint in words).

    Args:
        kind: ``number``, ``integer``, ``choice`` or ``text``.
        low, high: bounds of a number or an integer (None: unbounded).
        options: the options of a choice.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    options: tuple[Any, ...] = ()

    def words(self) -> str | None:
        """The constraint as a sentence (None for plain text)."""
        if self.kind == "choice":
            return "one of: " + ", ".join(repr(o) for o in self.options)
        noun = {"number": "a number", "integer": "a whole number"}.get(self.kind)
        if noun is None:
            return None
        if self.low is not None and self.high is not None:
            return f"{noun} between {self.low:g} and {self.high:g}"
        return noun


@dataclass
class Outcome:
    """One evaluation of a workflow: the node that gets the feedback, the feedback
    text, and whether the problem is solved."""

    output: Any
    feedback: str
    solved: bool


@dataclass
class Task:
    """A built problem: its parameters and a function that runs the workflow with
    their current values."""

    params: list[Any]
    run: Callable[[], Outcome]


@dataclass(frozen=True)
class Problem:
    """A small optimization problem; ``build`` makes a fresh :class:`Task` with one
    library's adapter; ``answer`` is a solution (values of the task's parameters, in
    order), used only to check the problem itself."""

    name: str
    area: str
    build: Callable[[Lib], Task]
    answer: tuple[Any, ...]


class Lib(Protocol):
    """What a library supplies to build and optimize a problem."""

    #: The library's own ``bundle`` decorator factory (``@bundle()``, ``@bundle(trainable=True)``).
    bundle: Callable[..., Any]

    def node(self, value: Any, name: str) -> Any:
        """A fixed input node."""

    def param(self, value: Any, name: str, spec: Spec) -> Any:
        """A trainable parameter of the given kind."""

    def call(self, fn: Any, *args: Any) -> tuple[Any, str | None]:
        """Call a traced function: (output node, None), or (error node, "Type: message")
        when it raised."""

    def assign(self, param: Any, value: Any) -> None:
        """Set a parameter's value (to check a problem's answer)."""

    def step(self, optimizer: Any, output: Any, feedback: str) -> dict[str, int]:
        """Clear feedback, give ``feedback`` to ``output``, take one optimizer step;
        returns its ``calls``, ``prompt_tokens``, ``completion_tokens``."""


SPENT = ("calls", "prompt_tokens", "completion_tokens")
#: Seconds one evaluation of a workflow may take (proposed code may loop forever).
EVALUATION_LIMIT_S = 60


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` in the block after ``seconds``, and again every second
    until it ends: a traced function records an exception as data and the workflow
    goes on, so each later call that hangs is stopped too (main thread on POSIX;
    elsewhere no limit)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the workflow ran past its limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _evaluate(task: Task) -> Outcome:
    with time_limit(EVALUATION_LIMIT_S):
        return task.run()


def run_problem(problem: Problem, lib: Lib, optimizer: Callable[[list[Any]], Any], steps: int) -> dict[str, Any]:
    """Run ``problem`` with at most ``steps`` optimizer steps, stopping once solved.

    Returns the run's record: ``solved``, ``steps`` taken, model ``calls`` and
    tokens, wall ``seconds`` from the first evaluation to the last, and the
    ``errors``: a step that raised is counted and the run goes on; a workflow that
    raised or ran past ``EVALUATION_LIMIT_S`` ends the run unsolved.
    """
    record: dict[str, Any] = {"problem": problem.name, "solved": False, "steps": 0, "errors": []}
    record.update(dict.fromkeys(SPENT, 0))
    started = time.perf_counter()
    try:
        task = problem.build(lib)
        opt = optimizer(task.params)
        outcome = _evaluate(task)
        while not outcome.solved and record["steps"] < steps:
            record["steps"] += 1
            try:
                spent = lib.step(opt, outcome.output, outcome.feedback)
            except Exception as exc:  # the library's own failure: counted, the run goes on
                record["errors"].append(f"step {record['steps']}: {type(exc).__name__}: {exc}"[:300])
            else:
                for key in SPENT:
                    record[key] += spent.get(key, 0)
            outcome = _evaluate(task)
        record["solved"] = outcome.solved
    except Exception as exc:  # the workflow failed or hung with the values it got: the run ends
        record["errors"].append(f"run: {type(exc).__name__}: {exc}"[:300])
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def check_problem(problem: Problem, lib: Lib) -> str | None:
    """Why ``problem`` is broken with ``lib`` (it starts solved, or its answer does not
    solve it), or None when it is sound."""
    task = problem.build(lib)
    if task.run().solved:
        return f"{problem.name}: solved before any step"
    for param, value in zip(task.params, problem.answer, strict=True):
        lib.assign(param, value)
    outcome = task.run()
    return None if outcome.solved else f"{problem.name}: the answer does not solve it: {outcome.feedback}"


def progress(side: str, seed: int, record: dict[str, Any]) -> str:
    """One line about a finished run, for the console."""
    verdict = "solved" if record["solved"] else "not solved"
    errors = f", errors: {record['errors']}" if record["errors"] else ""
    return (
        f"{side} {record['problem']} (seed {seed}): {verdict} after {record['steps']} steps, "
        f"{record['calls']} calls, {record['seconds']:.1f} s{errors}"
    )


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rate, and medians over the solved runs of steps, calls, tokens and seconds."""
    solved = [r for r in records if r["solved"]]
    return {
        "runs": len(records),
        "solved": len(solved),
        "success_rate": round(len(solved) / len(records), 3) if records else None,
        "median_steps": _median([r["steps"] for r in solved]),
        "median_calls": _median([r["calls"] for r in solved]),
        "median_tokens": _median([r["prompt_tokens"] + r["completion_tokens"] for r in solved]),
        "median_seconds": _median([r["seconds"] for r in solved]),
        "errors": sum(len(r["errors"]) for r in records),
    }


def side_figures(records: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The overall summary of one side, with one summary per problem."""
    figures = summarize(records)
    figures["per_problem"] = {n: summarize([r for r in records if r["problem"] == n]) for n in names}
    return figures
