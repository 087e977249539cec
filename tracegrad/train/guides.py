"""Guides: the metric of a workflow, ``guide(example, output) -> (score, feedback)``.

A guide scores one output and says, in words, what is wrong with it: the score decides
which parameters are better, the feedback is what an LLM optimizer learns from. Any
function ``(example, output) -> (score, feedback)`` is a guide (a bare score means no
feedback). ``output`` is the plain value the workflow returned, not its node.

A score is a float or a mapping of named objectives to floats (a vector score). One
scalar decides acceptance: ``Guide.objective(score)``, by default the float itself or
the mean of the named scores; pass ``objective=`` to choose another rule (a weighted
sum, one objective alone). An example whose workflow raised scores ``failure_score``
(default 0) and gets the error as feedback; an example *succeeds* when its scalar score
reaches ``success_score`` (default 1), and a batch where every example succeeds gives
an optimizer nothing to learn from.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from tracegrad.train.data import Example

Score = float | Mapping[str, float]
Objective = Callable[[Score], float]


@runtime_checkable
class GuideFunction(Protocol):
    """What a guide is: a callable scoring one output of one example."""

    def __call__(self, example: Example, output: Any) -> tuple[Score, str] | Score: ...


def mean_objective(score: Score) -> float:
    """The default rule: a float as it is, the mean of a vector score's values."""
    if isinstance(score, Mapping):
        if not score:
            raise ValueError("a vector score needs at least one objective")
        return sum(float(v) for v in score.values()) / len(score)
    return float(score)


class Guide(ABC):
    """Base class of guides: scoring (``__call__``) plus the rules around scores.

    Args:
        failure_score: the score of an example whose workflow raised.
        success_score: an example whose scalar score is at least this succeeds.
        objective: the rule turning a score into the scalar that decides acceptance
            (default: ``mean_objective``).
    """

    def __init__(
        self,
        *,
        failure_score: Score = 0.0,
        success_score: float = 1.0,
        objective: Objective | None = None,
    ) -> None:
        self.failure_score = failure_score
        self.success_score = success_score
        self._objective = objective

    @abstractmethod
    def __call__(self, example: Example, output: Any) -> tuple[Score, str] | Score:
        """The score of ``output`` for ``example`` and the feedback that explains it."""

    def objective(self, score: Score) -> float:
        """The scalar of ``score`` that decides acceptance."""
        return float((self._objective or mean_objective)(score))

    def succeeded(self, scalar: float) -> bool:
        """Whether an example with this scalar score needs no improvement."""
        return scalar >= self.success_score

    def cache_key(self) -> str:
        """What identifies this guide's scores in the evaluation cache (its class and settings)."""
        settings = {k: _describe(v) for k, v in sorted(vars(self).items())}
        return f"{type(self).__module__}.{type(self).__qualname__}:{json.dumps(settings, sort_keys=True)}"


class FunctionGuide(Guide):
    """A plain function ``(example, output) -> (score, feedback)`` used as a guide."""

    def __init__(self, fn: Callable[[Example, Any], Any], **rules: Any) -> None:
        super().__init__(**rules)
        self.fn = fn

    def __call__(self, example: Example, output: Any) -> tuple[Score, str] | Score:
        return self.fn(example, output)

    def cache_key(self) -> str:
        rules = {k: _describe(v) for k, v in sorted(vars(self).items()) if k != "fn"}
        return f"function {function_key(self.fn)}:{json.dumps(rules, sort_keys=True)}"


def as_guide(guide: Any, **rules: Any) -> Guide:
    """``guide`` as a ``Guide``: a guide is returned as is, a function is wrapped."""
    if isinstance(guide, Guide):
        if rules:
            raise TypeError("pass failure_score / success_score / objective to the guide's constructor")
        return guide
    if not callable(guide):
        raise TypeError(f"a guide is a callable (example, output) -> (score, feedback), not {guide!r}")
    return FunctionGuide(guide, **rules)


def score_and_feedback(returned: Any) -> tuple[Score, str]:
    """Normalise what a guide returned to ``(score, feedback)``."""
    if isinstance(returned, tuple):
        if len(returned) != 2:
            raise TypeError(f"a guide returns (score, feedback), got a tuple of {len(returned)}")
        score, feedback = returned
    else:
        score, feedback = returned, ""
    if isinstance(score, bool):
        score = float(score)
    if isinstance(score, Mapping):
        score = {str(k): float(v) for k, v in score.items()}
    elif isinstance(score, (int, float)):
        score = float(score)
    else:
        raise TypeError(f"a score is a number or a mapping of names to numbers, got {score!r}")
    return score, "" if feedback is None else str(feedback)


# -- ready-made guides -----------------------------------------------------------------


class ExactMatch(Guide):
    """Score 1 when the output equals the label (or one of several labels), else 0.

    A label that is a list, tuple or set lists every accepted answer.

    Args:
        ignore_case: compare case-insensitively.
        strip: ignore leading and trailing whitespace.
        collapse_whitespace: treat runs of whitespace as one space.
        ignore_punctuation: drop ASCII punctuation before comparing.
        normalize: a function applied to both texts after the options above.
        **rules: ``failure_score``, ``success_score``, ``objective`` (see ``Guide``).
    """

    def __init__(
        self,
        *,
        ignore_case: bool = False,
        strip: bool = True,
        collapse_whitespace: bool = False,
        ignore_punctuation: bool = False,
        normalize: Callable[[str], str] | None = None,
        **rules: Any,
    ) -> None:
        super().__init__(**rules)
        self.ignore_case = ignore_case
        self.strip = strip
        self.collapse_whitespace = collapse_whitespace
        self.ignore_punctuation = ignore_punctuation
        self.normalize = normalize

    def clean(self, value: Any) -> str:
        """The text compared for ``value``."""
        text = value if isinstance(value, str) else str(value)
        if self.ignore_punctuation:
            text = text.translate(_NO_PUNCTUATION)
        if self.collapse_whitespace:
            text = re.sub(r"\s+", " ", text)
        if self.strip:
            text = text.strip()
        if self.ignore_case:
            text = text.casefold()
        if self.normalize is not None:
            text = self.normalize(text)
        return text

    def __call__(self, example: Example, output: Any) -> tuple[float, str]:
        labels = example.label if isinstance(example.label, (list, tuple, set, frozenset)) else [example.label]
        got = self.clean(output)
        if any(got == self.clean(label) for label in labels):
            return 1.0, "Correct."
        expected = " or ".join(repr(label) for label in labels)
        return 0.0, f"Wrong: expected {expected}, got {output!r}."


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


class Predicate(Guide):
    """Score 1 when ``fn`` holds for the output, else 0 with ``message`` as feedback.

    ``fn`` takes the output, or ``(example, output)`` when it has two parameters;
    ``message`` is a text or a function ``(example, output) -> text``.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        message: str | Callable[[Example, Any], str],
        *,
        ok_message: str = "Correct.",
        **rules: Any,
    ) -> None:
        super().__init__(**rules)
        self.fn = fn
        self.message = message
        self.ok_message = ok_message
        self._pair = _arity(fn) >= 2

    def __call__(self, example: Example, output: Any) -> tuple[float, str]:
        holds = self.fn(example, output) if self._pair else self.fn(output)
        if holds:
            return 1.0, self.ok_message
        message = self.message(example, output) if callable(self.message) else self.message
        return 0.0, message


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)


def _describe(value: Any) -> Any:
    """Settings as data for a cache key (functions by name)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if callable(value):
        return function_key(value)
    return f"<{type(value).__qualname__}>"


def function_key(fn: Callable[..., Any]) -> str:
    """A function's name and a digest of its code: stable across processes, so a resumed
    run finds the evaluations it cached (functions differing only in the values they
    close over share a key)."""
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    code = getattr(fn, "__code__", None)
    if code is None:
        return name
    digest = hashlib.sha256()
    _digest_code(code, digest)
    return f"{name}#{digest.hexdigest()[:12]}"


def _digest_code(code: Any, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _digest_code(const, digest)
        elif isinstance(const, frozenset):
            digest.update(repr(sorted(map(repr, const))).encode())
        else:
            digest.update(repr(const).encode())


__all__ = [
    "ExactMatch",
    "FunctionGuide",
    "Guide",
    "GuideFunction",
    "Objective",
    "Predicate",
    "Score",
    "as_guide",
    "function_key",
    "mean_objective",
    "score_and_feedback",
]
