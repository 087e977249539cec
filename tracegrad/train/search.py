"""Candidate search: a pool of candidates and the strategies that grow it.

A ``Candidate`` is a set of parameter values (JSON, with its version), the optimizer
state that goes with it, and its scores per example (``"val:3"``, ``"train:17"``). Each
trainer step asks the strategy which candidate to start from (``select``), makes
``samples`` proposals from it (all from the same optimizer state, before any is
committed), scores them on the minibatch and -- those that do not drop -- on the
validation set, then asks the strategy which one to commit (``choose``, or none) and
which join the pool (``admit``). Only the chosen proposal is committed; the others
leave the optimizer as it was.

Strategies are small classes: ``BestOfN`` (greedy best-of-N; ``BestOfN(1)`` is plain
accept-if-not-worse), ``Beam`` (keep the best few, expand each in turn) and
``Pareto`` (GEPA-style: start from candidates that are best on some validation
example). Another (priority search, say) overrides the same three methods.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Candidate:
    """Parameter values with their optimizer state and scores.

    ``score`` is the candidate's validation score (None without a validation set),
    ``batch_score`` its score on the batch that made it, ``scores`` its per-example
    scores.
    ``optimizer_state`` is ``optimizer.state_dict()`` for these values: the committed
    state for a chosen proposal, its parent's state for one admitted without commit.
    """

    id: int
    version: str
    values: dict[str, Any]
    parent: int | None = None
    step: int = 0
    score: float | None = None
    batch_score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None
    expansions: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Candidate:
        return cls(**data)


@dataclass
class Scored:
    """A proposal being considered: its index among the step's samples, its values and
    scores (``score`` is None until it was scored on validation, or without one)."""

    sample: int
    version: str
    values: dict[str, Any]
    batch_score: float
    batch_scores: dict[str, float]
    score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def rank(self) -> float:
        return self.batch_score if self.score is None else self.score


class Pool:
    """The candidates of a run, by id; ``current`` is the one the parameters hold."""

    def __init__(self) -> None:
        self.candidates: dict[int, Candidate] = {}
        self.current: int = 0
        self._next = 0

    def __len__(self) -> int:
        return len(self.candidates)

    def __iter__(self):
        return iter(self.candidates.values())

    def add(self, candidate: Candidate) -> Candidate:
        candidate.id = self._next
        self._next += 1
        self.candidates[candidate.id] = candidate
        return candidate

    def __getitem__(self, cid: int) -> Candidate:
        return self.candidates[cid]

    def best(self) -> Candidate:
        """The best-scoring candidate (among equals the current one, then the newest)."""
        return max(self.candidates.values(), key=lambda c: (_rank(c), c.id == self.current, c.id))

    def remove(self, cid: int) -> None:
        if cid != self.current:
            self.candidates.pop(cid, None)

    def to_json(self) -> dict[str, Any]:
        return {"current": self.current, "next": self._next, "candidates": [c.to_json() for c in self]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pool:
        pool = cls()
        pool.current = int(data["current"])
        pool._next = int(data["next"])
        pool.candidates = {c["id"]: Candidate.from_json(c) for c in data["candidates"]}
        return pool


def _rank(candidate: Candidate) -> float:
    if candidate.score is not None:
        return candidate.score
    return candidate.batch_score if candidate.batch_score is not None else float("-inf")


class Strategy:
    """Base class of search strategies (see the module docstring).

    ``samples`` is how many proposals a step makes; ``pool_size`` how many candidates
    the pool keeps (the current one and the best are always kept).
    """

    samples: int = 1
    pool_size: int = 1

    def select(self, pool: Pool, rng: random.Random) -> Candidate:
        """The candidate to start this step from (default: the current one)."""
        return pool[pool.current]

    def eligible(self, parent: Candidate, screened: list[Scored]) -> list[Scored]:
        """The proposals that may be kept: ``screened`` ones (not below the parent on the
        minibatch) that, when scored on validation, are not below the parent there."""
        return [s for s in screened if s.score is None or parent.score is None or s.score >= parent.score]

    def choose(self, parent: Candidate, eligible: list[Scored]) -> Scored | None:
        """The proposal to commit: the best-ranked eligible one (the earliest sample
        among equals), or None."""
        return max(eligible, key=lambda s: (s.rank, -s.sample)) if eligible else None

    def admit(self, pool: Pool, parent: Candidate, eligible: list[Scored], chosen: Scored | None) -> list[Scored]:
        """The proposals that join the pool (default: the chosen one)."""
        return [chosen] if chosen is not None else []

    def prune(self, pool: Pool) -> None:
        """Drop candidates beyond ``pool_size``, lowest-ranked first."""
        _keep_first(pool, sorted(pool, key=lambda c: (_rank(c), c.id), reverse=True), self.pool_size)

    def final(self, pool: Pool) -> Candidate:
        """The candidate the parameters hold when a run ends: the best by validation
        score, or the current one when there is no validation set (batch scores of
        different batches do not compare)."""
        if any(c.score is not None for c in pool):
            return pool.best()
        return pool[pool.current]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(samples={self.samples})"


class BestOfN(Strategy):
    """``samples`` proposals from the current candidate; commit the best one that does
    not drop (``BestOfN(1)``: accept a proposal unless it scores lower)."""

    def __init__(self, samples: int = 1) -> None:
        if samples < 1:
            raise ValueError("samples must be at least 1")
        self.samples = samples
        self.pool_size = 1


class Beam(Strategy):
    """Keep the ``width`` best candidates; each step expands the one expanded least
    (the best among equals) with ``samples`` proposals, and every proposal that does not
    drop below its parent joins the beam."""

    def __init__(self, width: int = 3, samples: int = 2) -> None:
        if width < 1 or samples < 1:
            raise ValueError("width and samples must be at least 1")
        self.samples = samples
        self.pool_size = width

    def select(self, pool: Pool, rng: random.Random) -> Candidate:
        return min(pool, key=lambda c: (c.expansions, -_rank(c), c.id))

    def admit(self, pool: Pool, parent: Candidate, eligible: list[Scored], chosen: Scored | None) -> list[Scored]:
        return [chosen, *(s for s in eligible if s is not chosen)] if chosen is not None else []

    def __repr__(self) -> str:
        return f"Beam(width={self.pool_size}, samples={self.samples})"


class Pareto(Strategy):
    """GEPA-style selection: start from a candidate drawn among those that are best on
    at least one validation example (weighted by how many), so that candidates good at
    different examples all get expanded. Needs a validation set for per-example scores."""

    def __init__(self, samples: int = 1, pool_size: int = 16) -> None:
        if samples < 1 or pool_size < 1:
            raise ValueError("samples and pool_size must be at least 1")
        self.samples = samples
        self.pool_size = pool_size

    def select(self, pool: Pool, rng: random.Random) -> Candidate:
        front = pareto_front(pool)
        if not front:
            return pool[pool.current]
        ids = sorted(front)
        weights = [front[i] for i in ids]
        return pool[rng.choices(ids, weights=weights)[0]]

    def prune(self, pool: Pool) -> None:
        """Keep the current and best candidates, then those on the front, then the best-ranked."""
        front = pareto_front(pool)
        order = sorted(pool, key=lambda c: (c.id not in front, -_rank(c), c.id))
        _keep_first(pool, order, self.pool_size)

    def __repr__(self) -> str:
        return f"Pareto(samples={self.samples}, pool_size={self.pool_size})"


def pareto_front(pool: Pool) -> dict[int, int]:
    """``{candidate id: number of validation examples it is best on}`` (ties count for all)."""
    keys = {k for c in pool for k in c.scores if k.startswith("val:")}
    wins: dict[int, int] = {}
    for key in keys:
        scored = [(c.scores[key], c.id) for c in pool if key in c.scores]
        top = max(s for s, _ in scored)
        for s, cid in scored:
            if s >= top:
                wins[cid] = wins.get(cid, 0) + 1
    return wins


def as_strategy(search: Strategy | int | None) -> Strategy:
    """A strategy from ``search``: a ``Strategy``, a number of samples (best-of-N), or None."""
    if search is None:
        return BestOfN(1)
    if isinstance(search, bool) or not isinstance(search, (Strategy, int)):
        raise TypeError(f"search is a Strategy or a number of samples, not {search!r}")
    return BestOfN(search) if isinstance(search, int) else search


def _keep_first(pool: Pool, order: list[Candidate], size: int) -> None:
    """Keep the current and best candidates, then the first of ``order``, up to ``size``."""
    keep = {pool.current, pool.best().id}
    for candidate in order:
        if len(keep) >= size:
            break
        keep.add(candidate.id)
    for candidate in list(pool):
        if candidate.id not in keep:
            pool.remove(candidate.id)


__all__ = ["Beam", "BestOfN", "Candidate", "Pareto", "Pool", "Scored", "Strategy", "as_strategy", "pareto_front"]
