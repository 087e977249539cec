"""Reading a run directory for people: what the report and the ``tracegrad`` command show.

A run directory written by ``tracegrad.train(..., run_dir=...)`` holds the checkpoint
(the history of steps, the parameter versions, the final parameters) and ``log.jsonl``
(one event per line; its ``proposal`` events carry the optimizer's reasoning and the
exact request and reply of its model). ``read_run`` checks both against the shapes
below and joins them into one ``RunView``. Anything missing, corrupt or of the wrong
type -- bad JSON, invalid UTF-8, JSON nested thousands deep, integers too long to read,
a truncated log line -- is a ``TracegradError`` whose message is one sentence naming
the file.

Only the part of the log that the checkpoint knew (``log_offset`` bytes) is read: what a
killed step appended after it is not part of the run, exactly as on resume.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracegrad._text import truncate
from tracegrad.errors import TracegradError
from tracegrad.train.run import FORMAT, VERSION, RunDir

#: Where a trainer saves the trace of its last step.
TRACE = "trace.json"


#: A count or a position (steps, calls, tokens, bytes): a whole number that a float holds exactly.
Count = Annotated[int, Field(ge=0, le=2**53)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SpendView(_Shape):
    """What a step or the run cost."""

    calls: Count = 0
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    cost_usd: float | None = 0.0


class UpdateView(_Shape):
    """One parameter's old and new value in an optimizer's report."""

    name: str
    old: Any = None
    new: Any = None


class ReportView(_Shape):
    """An optimizer's step report, as the log holds it (``StepReport.to_json``)."""

    optimizer: str = ""
    status: str = ""
    reason: str = ""
    reasoning: str = ""
    updates: list[UpdateView] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    reply: str = ""
    parts: dict[str, ReportView] = Field(default_factory=dict)

    def flat(self, label: str = "") -> list[tuple[str, ReportView]]:
        """This report and its parts' (a composite's optimizers), each with its label."""
        out = [(label or self.optimizer, self)]
        for name, part in self.parts.items():
            out += part.flat(f"{label or self.optimizer} / {name}")
        return out


class ProposalView(_Shape):
    """One proposal of a step: its outcome, its scores and (from the log) its report."""

    sample: Count = 0
    status: str = ""
    outcome: str = ""
    version: str | None = None
    batch_score: float | None = None
    validation_score: float | None = None
    reason: str = ""
    report: ReportView | None = None


class StepView(_Shape):
    """One training step (see ``tracegrad.train.StepRecord``)."""

    step: Count
    epoch: Count = 0
    batch: Count = 0
    status: str
    batch_score: float
    accepted: bool = False
    candidate_batch_score: float | None = None
    validation_score: float | None = None
    parent: str = ""
    version: str = ""
    reason: str = ""
    proposals: list[ProposalView] = Field(default_factory=list)
    spend: SpendView = Field(default_factory=SpendView)

    @property
    def train_score(self) -> float:
        """The batch score of the parameters the step ended with."""
        if self.accepted and self.candidate_batch_score is not None:
            return self.candidate_batch_score
        return self.batch_score


class _History(_Shape):
    steps: list[StepView] = Field(default_factory=list)
    initial_version: str = ""
    initial_score: float | None = None
    best_version: str = ""
    best_score: float | None = None
    versions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    spend: SpendView = Field(default_factory=SpendView)
    stop_reason: str | None = None


class _Checkpoint(_Shape):
    format: str
    version: int = 0
    config: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any]
    history: _History
    log_offset: Count | None = None


class _Event(_Shape):
    event: str = ""
    step: Count | None = None


class RunView(BaseModel):
    """A run directory read for people: its settings, steps, versions and totals.

    ``steps`` carry their proposals, with the optimizer's report from the log when the
    log has it; ``versions`` maps each parameter version to its values; ``parameters``
    are the values the run ended with; ``stop_reason`` is None for a run still going.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    path: Path
    config: dict[str, Any]
    parameters: dict[str, Any]
    steps: list[StepView]
    initial_version: str
    initial_score: float | None
    best_version: str
    best_score: float | None
    versions: dict[str, dict[str, Any]]
    spend: SpendView
    stop_reason: str | None

    @property
    def trace_path(self) -> Path:
        return self.path / TRACE

    def step(self, number: int) -> StepView:
        """The step numbered ``number`` (from 1), or a ``TracegradError`` naming the range."""
        for s in self.steps:
            if s.step == number:
                return s
        numbers = [s.step for s in self.steps]
        span = f"steps {min(numbers)} to {max(numbers)}" if numbers else "no steps"
        raise TracegradError(f"the run in {os.fspath(self.path)!r} has no step {number} (it has {span})")


class ModuleCheckpoint(_Shape):
    """A module checkpoint (``Module.save``): the module's class, its parameters, extra data."""

    format: str
    version: int = 0
    module: str = "?"
    parameters: dict[str, Any]
    extra: dict[str, Any] = Field(default_factory=dict)


def read_module_checkpoint(path: str | os.PathLike[str]) -> ModuleCheckpoint:
    """The module checkpoint in the file ``path``, checked like ``read_run`` checks a run."""
    from tracegrad.nodes.module import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    file = Path(path)
    if file.is_dir():
        raise TracegradError(f"{os.fspath(file)!r} is a directory, not a module checkpoint")
    data = read_json_file(file, "the checkpoint")
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise TracegradError(f"{os.fspath(file)!r} is not a tracegrad module checkpoint")
    checkpoint = _validate(ModuleCheckpoint, data, file)
    if checkpoint.version > CHECKPOINT_VERSION:
        raise TracegradError(f"{os.fspath(file)!r} was written by a newer tracegrad (version {checkpoint.version})")
    return checkpoint


def run_dir_of(path: str | os.PathLike[str]) -> Path | None:
    """The run directory ``path`` names -- a directory, or the ``checkpoint.json`` of a
    run -- or None for any other file (a module checkpoint)."""
    file = Path(path)
    if file.is_dir():
        return file
    if file.name == RunDir(file.parent).checkpoint_path.name and file.is_file():
        data = read_json_file(file, "the checkpoint")
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return file.parent
    return None


def read_parameters(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parameters held by ``path``: a run's final ones (see ``run_dir_of``) or a
    module checkpoint's."""
    run_dir = run_dir_of(path)
    return read_run(run_dir).parameters if run_dir is not None else read_module_checkpoint(path).parameters


def read_json_file(path: Path, what: str) -> Any:
    """The JSON data in ``path``; any way of failing is one sentence naming ``what``."""
    return _parse(_read_bytes(path, what), f"{what} {os.fspath(path)!r}")


def read_run(run_dir: str | os.PathLike[str]) -> RunView:
    """The run in ``run_dir`` (see the module docstring)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise TracegradError(f"{os.fspath(run.path)!r} is not a directory")
    if not run.checkpoint_path.is_file():
        raise TracegradError(f"{os.fspath(run.path)!r} is not a tracegrad run directory (it has no checkpoint.json)")
    data = read_json_file(run.checkpoint_path, "the checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TracegradError(f"{os.fspath(run.checkpoint_path)!r} is not a tracegrad training checkpoint")
    checkpoint = _validate(_Checkpoint, data, run.checkpoint_path)
    if checkpoint.version > VERSION:
        raise TracegradError(f"{os.fspath(run.checkpoint_path)!r} was written by a newer tracegrad")
    history = checkpoint.history
    reports = _proposal_reports(run.log.path, checkpoint.log_offset)
    for step in history.steps:
        for proposal in step.proposals:
            proposal.report = reports.get((step.step, proposal.sample), proposal.report)
    return RunView(
        path=run.path,
        config=checkpoint.config,
        parameters=checkpoint.parameters,
        steps=history.steps,
        initial_version=history.initial_version,
        initial_score=history.initial_score,
        best_version=history.best_version,
        best_score=history.best_score,
        versions=history.versions,
        spend=history.spend,
        stop_reason=history.stop_reason,
    )


def _proposal_reports(path: Path, offset: int | None) -> dict[tuple[int, int], ReportView]:
    """The reports of the log's proposal events, by (step, sample)."""
    if not path.exists():
        return {}
    raw = _read_bytes(path, "the log")
    if offset is not None:
        raw = raw[:offset]
    reports: dict[tuple[int, int], ReportView] = {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number} of the log {os.fspath(path)!r}"
        record = _parse(line, where)
        if not isinstance(record, dict):
            raise TracegradError(f"{where} is not a JSON object")
        if record.get("event") != "proposal":
            continue
        event = _validate(_Event, record, path, where)
        proposal = _validate(ProposalView, record, path, where)
        if event.step is not None and proposal.report is not None:
            reports[(event.step, proposal.sample)] = proposal.report
    return reports


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TracegradError(f"{what} {os.fspath(path)!r} does not exist") from None
    except IsADirectoryError:
        raise TracegradError(f"{what} {os.fspath(path)!r} is a directory, not a file") from None
    except OSError as exc:
        raise TracegradError(f"cannot read {what} {os.fspath(path)!r}: {exc.strerror or exc}") from None


def _parse(raw: bytes, where: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TracegradError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise TracegradError(f"{where} holds JSON nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        reason = " ".join(str(exc).split(";")[0].split())
        raise TracegradError(f"{where} is not valid JSON ({reason})") from None


def _validate(shape: type[_Shape], data: Any, path: Path, where: str | None = None) -> Any:
    try:
        return shape.model_validate(data)
    except (ValidationError, RecursionError, ValueError, TypeError) as exc:
        raise TracegradError(f"{where or repr(os.fspath(path))} is malformed: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        loc = truncate(".".join(str(part) for part in first["loc"]), 80) or "the top level"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        return f"{loc}: {first['msg'].lower()}{more}"
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = [
    "TRACE",
    "ModuleCheckpoint",
    "ProposalView",
    "ReportView",
    "RunView",
    "SpendView",
    "StepView",
    "UpdateView",
    "read_json_file",
    "read_module_checkpoint",
    "read_parameters",
    "read_run",
    "run_dir_of",
]
