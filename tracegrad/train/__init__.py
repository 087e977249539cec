"""Training: datasets, guides, evaluation, the trainer loop, candidate search, run dirs.

``evaluate(model, dataset, guide)`` scores a workflow on a dataset, concurrently;
``train(model, dataset, guide, optimizer)`` optimizes its parameters over minibatches,
keeping a proposal only when the score does not drop, with checkpoints to resume from.
Importing this package imports neither ray, jax nor litellm (``RayExecutor`` imports
ray when it is first used).

The package is callable: ``tracegrad.train(model, dataset, guide, optimizer, ...)`` is
``tracegrad.train.train(...)``. (A package attribute named ``train`` is the package as
soon as it is imported, so the package itself is what ``tracegrad.train`` can be.)
"""

from __future__ import annotations

import sys
import types
from typing import Any

from tracegrad.train.aggregate import batch_feedback, join_batch
from tracegrad.train.cache import EvaluationCache
from tracegrad.train.data import Dataset, Example, as_examples, batches, split
from tracegrad.train.evaluate import evaluate
from tracegrad.train.executors import Executor, LocalExecutor, Outcome
from tracegrad.train.guides import ExactMatch, FunctionGuide, Guide, Predicate, as_guide, mean_objective
from tracegrad.train.history import History, ProposalRecord, StepRecord
from tracegrad.train.judge import LLMJudge
from tracegrad.train.results import Evaluation, ExampleResult, Spend
from tracegrad.train.run import RunDir
from tracegrad.train.search import Beam, BestOfN, Candidate, Pareto, Pool, Strategy
from tracegrad.train.stopping import AllOf, AnyOf, NoImprovement, RunState, Stop, StopAfter, TargetScore
from tracegrad.train.trainer import Trainer, train


class _CallablePackage(types.ModuleType):
    """The type of this package: calling it calls ``train``."""

    def __call__(self, *args: Any, **kwargs: Any) -> History:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage


def __getattr__(name: str) -> Any:
    if name == "RayExecutor":  # imports ray: only when asked for
        from tracegrad.train.ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(f"module 'tracegrad.train' has no attribute {name!r}")


__all__ = [
    "AllOf",
    "AnyOf",
    "Beam",
    "BestOfN",
    "Candidate",
    "Dataset",
    "Evaluation",
    "EvaluationCache",
    "ExactMatch",
    "Example",
    "ExampleResult",
    "Executor",
    "FunctionGuide",
    "Guide",
    "History",
    "LLMJudge",
    "LocalExecutor",
    "NoImprovement",
    "Outcome",
    "Pareto",
    "Pool",
    "Predicate",
    "ProposalRecord",
    "RunDir",
    "RunState",
    "Spend",
    "StepRecord",
    "Stop",
    "StopAfter",
    "Strategy",
    "TargetScore",
    "Trainer",
    "as_examples",
    "as_guide",
    "batch_feedback",
    "batches",
    "evaluate",
    "join_batch",
    "mean_objective",
    "split",
    "train",
]
