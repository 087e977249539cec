"""Minibatch aggregation: one output node and one feedback for a whole batch.

An optimizer step learns from one ``backward``. For a batch, ``join_batch`` records one
traced operation, ``minibatch(output_1, ..., output_n)``, whose inputs are the outputs
of the batch's examples in order (the error node for an example whose workflow raised),
and writes one feedback text listing each example's input, score and feedback. The
optimizer thus sees every example's computation in one graph, and which feedback goes
with which output.

Any function ``(results) -> (node, feedback)`` can replace it (``Trainer(aggregate=)``);
it may return a third item, a dict of keyword arguments for ``optimizer.backward``
(e.g. ``{"loss": loss_node}`` for a ``Hybrid`` with a gradient part).
Texts never name nodes by their serial numbers, so the same batch gives the same
feedback in every process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tracegrad._text import literal, truncate
from tracegrad.trace import Node, apply, tracing
from tracegrad.train.results import ExampleResult

Aggregate = Callable[[Sequence[ExampleResult]], tuple[Any, ...]]

#: Characters of an example's input shown in the batch feedback.
INPUT_CHARS = 200


def minibatch(*outputs: Any) -> list[Any]:
    """The outputs of a minibatch of examples: output i is the output for example i of the feedback."""
    return list(outputs)


def join_batch(results: Sequence[ExampleResult]) -> tuple[Node, str]:
    """One traced ``minibatch`` operation over the batch's outputs, and its feedback text."""
    if not results:
        raise ValueError("cannot aggregate an empty batch")
    outputs = [r.node if isinstance(r.node, Node) else Node(r.output) for r in results]
    with tracing(True):
        joined = apply(minibatch, *outputs, name="minibatch")
    return joined, batch_feedback(results)


def batch_feedback(results: Sequence[ExampleResult]) -> str:
    """Each example's input, score and feedback, numbered like ``minibatch``'s inputs."""
    mean = sum(r.score for r in results) / len(results)
    ok = sum(r.succeeded for r in results)
    lines = [
        f"Feedback on a minibatch of {len(results)} examples ({ok} fully correct, mean score {mean:.3g}); "
        f"example i produced input i of minibatch."
    ]
    for i, r in enumerate(results, 1):
        shown = truncate(literal(r.example.input), INPUT_CHARS)
        lines.append(f"Example {i} (input {shown}; score {r.score:.3g}): {r.feedback or '(no feedback)'}")
    return "\n".join(lines)


__all__ = ["INPUT_CHARS", "Aggregate", "batch_feedback", "join_batch", "minibatch"]
