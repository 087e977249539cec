"""The record of a training run: one ``StepRecord`` per batch, and the run's totals.

Everything here is JSON data (``to_json`` / ``from_json``), so a checkpoint holds the
history and a resumed run continues it. Parameter values are named by *versions*:
short digests of their JSON values, with the values themselves in
``History.versions``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tracegrad.train.results import Spend

#: What a step can end with.
STEP_STATUSES = ("accepted", "rejected", "skipped", "no_proposal")


@dataclass
class ProposalRecord:
    """One proposal of a step: its sample index, the optimizer's status, its scores.

    ``outcome`` is ``chosen``, ``dropped`` (scored lower, or another was chosen),
    ``invalid`` (a value did not fit its kind), or ``unchanged`` (nothing new was
    proposed: statuses ``unchanged``, ``no_reply``, ``no_feedback``, ``rejected``).
    """

    sample: int
    status: str
    outcome: str
    version: str | None = None
    batch_score: float | None = None
    validation_score: float | None = None
    reason: str = ""
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class StepRecord:
    """One training step (one batch).

    ``status``: ``accepted`` (a proposal was committed), ``rejected`` (proposals were
    made and none kept), ``skipped`` (every example already succeeded: no optimizer
    call) or ``no_proposal`` (the optimizer proposed nothing new). ``batch_score`` is
    the score of the parameters the step started from on the batch;
    ``validation_score`` the validation score of the parameters after the step (None
    without a validation set). ``parent`` and ``version`` are the parameter versions
    before and after it; ``spend`` what the step cost, evaluations and optimizer calls.
    """

    step: int
    epoch: int
    batch: int
    examples: list[int]
    status: str
    batch_score: float
    accepted: bool = False
    candidate_batch_score: float | None = None
    validation_score: float | None = None
    candidate_validation_score: float | None = None
    parent: str = ""
    version: str = ""
    reason: str = ""
    proposals: list[ProposalRecord] = field(default_factory=list)
    spend: Spend = field(default_factory=Spend)

    @property
    def score(self) -> float:
        """The score of the parameters after the step: validation if measured, else batch."""
        if self.validation_score is not None:
            return self.validation_score
        if self.accepted and self.candidate_batch_score is not None:
            return self.candidate_batch_score
        return self.batch_score

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["spend"] = self.spend.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        data = dict(data)
        data["proposals"] = [ProposalRecord(**p) for p in data.get("proposals", [])]
        data["spend"] = Spend(**data.get("spend", {}))
        return cls(**data)


@dataclass
class History:
    """A run: its steps, the scores of its starting and best parameters, its totals.

    ``initial_score`` is the starting parameters' validation score (None without a
    validation set); ``best_version`` / ``best_score`` the parameters the run ended
    with and their score; ``versions`` the values of every version named in the steps;
    ``spend`` the whole run's cost; ``stop_reason`` why it stopped (None while running
    or when the epochs ran out).
    """

    steps: list[StepRecord] = field(default_factory=list)
    initial_version: str = ""
    initial_score: float | None = None
    best_version: str = ""
    best_score: float | None = None
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)
    stop_reason: str | None = None

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, index: int) -> StepRecord:
        return self.steps[index]

    @property
    def scores(self) -> list[float]:
        """The score after each step (validation if measured, else batch)."""
        return [s.score for s in self.steps]

    @property
    def accepted(self) -> int:
        return sum(s.accepted for s in self.steps)

    @property
    def best_values(self) -> dict[str, Any]:
        """The JSON values of the best parameters."""
        return dict(self.versions.get(self.best_version, {}))

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "initial_version": self.initial_version,
            "initial_score": self.initial_score,
            "best_version": self.best_version,
            "best_score": self.best_score,
            "versions": self.versions,
            "spend": self.spend.to_json(),
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        return cls(
            steps=[StepRecord.from_json(s) for s in data.get("steps", [])],
            initial_version=data.get("initial_version", ""),
            initial_score=data.get("initial_score"),
            best_version=data.get("best_version", ""),
            best_score=data.get("best_score"),
            versions={k: dict(v) for k, v in data.get("versions", {}).items()},
            spend=Spend(**data.get("spend", {})),
            stop_reason=data.get("stop_reason"),
        )

    def summary(self) -> str:
        start = "-" if self.initial_score is None else f"{self.initial_score:.3f}"
        best = "-" if self.best_score is None else f"{self.best_score:.3f}"
        stopped = f"; stopped: {self.stop_reason}" if self.stop_reason else ""
        steps = f"{len(self.steps)} steps, {self.accepted} accepted"
        return f"{steps}; score {start} -> {best}; {self.spend.summary()}{stopped}"

    def __repr__(self) -> str:
        return f"<History {self.summary()}>"


__all__ = ["STEP_STATUSES", "History", "ProposalRecord", "StepRecord"]
