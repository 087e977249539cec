"""How ``OptoPrimeMulti`` keeps one of its candidate proposals.

Three rules, each a function ``(candidates, ...) -> Choice`` over the usable
candidates (replies whose values were all valid):

* ``by_majority``: the values suggested most often (identical suggestions agree);
  a tie goes to the earliest candidate;
* ``by_judge``: a model reads the problem and the candidates and names the best one
  (one structured call; a reply that never names a candidate falls back to majority);
* ``by_score``: the user's check, run with each candidate's values assigned in turn
  (and the old values put back): the highest score wins.

A user's own rule is a function ``candidates -> index`` (``by_function``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from tracegrad._text import literal, truncate
from tracegrad.llm.errors import StructuredOutputError
from tracegrad.trace import assign

if TYPE_CHECKING:
    from tracegrad.llm.client import LLM
    from tracegrad.llm.request import Completion
    from tracegrad.optimizers.base import Optimizer, Proposal

JUDGE_SYSTEM = (
    "You compare candidate updates of the #Variables of an optimization problem. Read the "
    "problem and its #Feedback, then the candidates, and pick the one most likely to get the "
    'best feedback. Reply with a JSON object: {"reasoning": "<why>", "best": <candidate number>}.'
)


class JudgeReply(BaseModel):
    """What the judge answers: its reasoning and the number of the best candidate."""

    reasoning: str = ""
    best: int


@dataclass
class Choice:
    """The candidate kept (an index into the usable candidates) and what decided it."""

    index: int
    method: str
    notes: dict[str, Any] = field(default_factory=dict)
    completion: Completion | None = None


def values_key(optimizer: Optimizer, proposal: Proposal) -> str:
    """The proposal's values as canonical JSON: equal for identical suggestions."""
    data = {n: optimizer.parameter(n).kind.to_json(v) for n, v in proposal.values.items()}
    return json.dumps(data, sort_keys=True, default=repr)


def by_majority(optimizer: Optimizer, candidates: Sequence[Proposal]) -> Choice:
    """The values suggested by the most candidates (the earliest of a tie)."""
    votes: dict[str, list[int]] = {}
    for i, proposal in enumerate(candidates):
        votes.setdefault(values_key(optimizer, proposal), []).append(i)
    best = max(votes.values(), key=len)  # max keeps the first of equals: the earliest
    return Choice(best[0], "majority", {"votes": [len(votes[values_key(optimizer, p)]) for p in candidates]})


def by_judge(
    optimizer: Optimizer, candidates: Sequence[Proposal], judge: LLM, problem: str, *, max_tokens: int | None
) -> Choice:
    """The candidate a model judges best (one structured call, repaired once); majority
    when its replies never name a candidate."""
    if len({values_key(optimizer, p) for p in candidates}) == 1:
        return Choice(0, "agreement")
    shown = "\n\n".join(_candidate_text(i, p) for i, p in enumerate(candidates, 1))
    messages = [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"{problem}\n\n#Candidates\n{shown}"},
    ]

    def check(done: Completion) -> list[str]:
        reply = done.parsed
        if reply is None:
            return [f"the reply held no usable JSON object: {done.parse_error}"]
        if not 1 <= reply.best <= len(candidates):
            return [f"best must be a candidate number from 1 to {len(candidates)}, got {reply.best}"]
        return []

    options: dict[str, Any] = {"schema": JudgeReply, "check": check, "repairs": 1}
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    try:
        done = judge.complete(messages, **options)
    except StructuredOutputError as exc:
        fallback = by_majority(optimizer, candidates)
        fallback.notes["judge_error"] = str(exc)
        fallback.completion = exc.completion
        return fallback
    reply: JudgeReply = done.parsed
    return Choice(reply.best - 1, "judge", {"judge_reasoning": reply.reasoning}, done)


def by_score(optimizer: Optimizer, candidates: Sequence[Proposal], score: Callable[[], float]) -> Choice:
    """The candidate whose values score highest on ``score()`` (run with the values
    assigned, the old ones put back after each). A candidate whose check raises is
    skipped (its error noted); if every check raises, the first error is raised."""
    scores: list[float | None] = []
    errors: dict[int, str] = {}
    first_error: BaseException | None = None
    for i, proposal in enumerate(candidates):
        params = {optimizer.parameter(n): v for n, v in proposal.values.items()}
        old = {p: p.value for p in params}
        try:
            assign(params)
            try:
                scores.append(float(score()))
            finally:
                assign(old)
        except Exception as exc:
            scores.append(None)
            errors[i] = f"{type(exc).__name__}: {exc}"
            first_error = first_error or exc
    scored = [(s, -i) for i, s in enumerate(scores) if s is not None]
    if not scored:
        assert first_error is not None
        raise first_error
    best = -max(scored)[1]
    return Choice(best, "score", {"scores": scores, **({"score_errors": errors} if errors else {})})


def by_function(candidates: Sequence[Proposal], select: Callable[[list[Proposal]], int]) -> Choice:
    """The candidate a user's function picks: ``select(candidates) -> index``."""
    index = select(list(candidates))
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(candidates):
        raise ValueError(f"select() must return an index from 0 to {len(candidates) - 1}, got {index!r}")
    return Choice(index, "function")


def _candidate_text(number: int, proposal: Proposal) -> str:
    values = "\n".join(f"{n} = {truncate(literal(v), 600)}" for n, v in proposal.values.items()) or "(no change)"
    reasoning = truncate(proposal.report.reasoning, 600) or "(none given)"
    return f"Candidate {number}:\nreasoning: {reasoning}\nvalues:\n{values}"


__all__ = ["Choice", "JudgeReply", "by_function", "by_judge", "by_majority", "by_score", "values_key"]
