"""``MLflowLogger``: a training run in MLflow, written by a subscriber to the run's events.

``train(..., callbacks=[tg.MLflowLogger(experiment="prompts")])`` logs, into one MLflow
run:

* parameters: the trainer's settings and the starting value of each trained parameter
  (as ``param.<name>``, cut to MLflow's length limit);
* metrics at each step (MLflow's ``step`` is the training step): ``batch_score``,
  ``score``, ``validation_score``, ``best_score``, ``accepted``, the step's ``calls``,
  ``prompt_tokens``, ``completion_tokens`` and ``cost_usd``, and the run's totals so far
  (``total_calls``, ``total_tokens``, ``total_cost_usd``); the starting validation
  score at step 0;
* artifacts: every parameter version the run adopted, one text file per parameter
  (``versions/step-0003-<version>/<name>.txt``; the final ones also in
  ``versions/final/``); and at the end, the run's HTML report (``tracegrad.report``
  of the run directory, else a ``report.html`` already there) and its last trace.

A resumed run continues the same MLflow run: its id is kept in ``mlflow.json`` in the
run directory. MLflow is imported on the first event (``pip install tracegrad[mlflow]``);
its client is used directly, so MLflow's global "active run" is left alone. The
logger follows the run's events only; it never stops a run (a failing MLflow is
logged once, see ``tracegrad.events``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from tracegrad._io import atomic_write_json, read_json
from tracegrad.errors import TracegradError
from tracegrad.events import Event, RunEnded, RunStarted, StepEnded

logger = logging.getLogger("tracegrad.train")

#: The file of a run directory that names its MLflow run (for resuming).
MLFLOW_FILE = "mlflow.json"
_PARAM_LIMIT = 6000  # MLflow's limit on a parameter value (older servers: 500)


class MLflowLogger:
    """Logs a training run to MLflow (see the module docstring); a run-event subscriber.

    Args:
        tracking_uri: where MLflow keeps runs (``"file:/path/mlruns"``,
            ``"sqlite:///mlflow.db"``, a server URL); default: MLflow's own setting.
        experiment: the experiment's name (created when missing); default: MLflow's
            default experiment.
        run_name: the MLflow run's name; default: the run directory's name.
        tags: tags to set on the MLflow run.
    """

    def __init__(
        self,
        *,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        #: The MLflow run's id, once the training run started.
        self.run_id: str | None = None
        self._client: Any = None
        self._logged: set[str] = set()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif self.run_id is None:
            return
        elif isinstance(event, StepEnded):
            self._step(event)
        elif isinstance(event, RunEnded):
            self._ended(event)

    # -- the events ------------------------------------------------------------------------
    def _started(self, event: RunStarted) -> None:
        from mlflow.entities import Param

        client = self.client()
        run_dir = Path(event.run_dir) if event.run_dir is not None else None
        previous = self._previous_run(run_dir) if event.resumed else None
        if previous is not None:
            self.run_id = previous
            client.update_run(previous, status="RUNNING")
            known = client.get_run(previous).data.params
        else:
            tags = {**self.tags, "tracegrad.run_dir": event.run_dir or ""}
            name = self.run_name or (run_dir.name if run_dir is not None else None)
            self.run_id = client.create_run(self._experiment_id(), run_name=name, tags=tags).info.run_id
            known = {}
            if run_dir is not None:
                atomic_write_json(run_dir / MLFLOW_FILE, {"run_id": self.run_id, "tracking_uri": self._uri()})
        params = {
            **{k: _text(v) for k, v in {**event.config, **event.settings}.items()},
            **{f"param.{n}": _text(v) for n, v in event.parameters.items()},
        }
        new = [Param(k, v[:_PARAM_LIMIT]) for k, v in params.items() if k not in known]
        for i in range(0, len(new), 100):  # MLflow takes at most 100 parameters a batch
            client.log_batch(self.run_id, params=new[i : i + 100])
        if not event.resumed:
            self._log_version(f"step-{event.step:04d}-{event.version}", event.version, event.parameters)
            if event.score is not None:
                self._metrics(event, 0, {"validation_score": event.score, "score": event.score})

    def _step(self, event: StepEnded) -> None:
        spend, total = event.spend, event.total
        figures = {
            "batch_score": event.batch_score,
            "score": event.score,
            "validation_score": event.validation_score,
            "best_score": event.best_score,
            "accepted": float(event.accepted),
            "calls": spend.get("calls"),
            "prompt_tokens": spend.get("prompt_tokens"),
            "completion_tokens": spend.get("completion_tokens"),
            "cost_usd": spend.get("cost_usd"),
            "total_calls": total.get("calls"),
            "total_tokens": total.get("prompt_tokens", 0) + total.get("completion_tokens", 0),
            "total_cost_usd": total.get("cost_usd"),
        }
        self._metrics(event, event.step, figures)
        if event.accepted:
            self._log_version(f"step-{event.step:04d}-{event.version}", event.version, event.parameters)

    def _ended(self, event: RunEnded) -> None:
        client = self.client()
        tags = {"tracegrad.stop_reason": event.reason, "tracegrad.best_version": event.best_version}
        for key, value in tags.items():
            client.set_tag(self.run_id, key, value)
        self._log_version("final", None, event.parameters)
        if event.run_dir is not None:
            for path in (_report(Path(event.run_dir)), Path(event.run_dir) / "trace.json"):
                if path is not None and path.is_file():
                    client.log_artifact(self.run_id, os.fspath(path))
        client.set_terminated(self.run_id, "FINISHED" if event.error is None else "FAILED")

    # -- MLflow ----------------------------------------------------------------------------
    def client(self) -> Any:
        """The ``mlflow.tracking.MlflowClient`` this logger writes with."""
        if self._client is None:
            try:
                from mlflow.tracking import MlflowClient
            except ImportError as exc:
                raise TracegradError("MLflowLogger needs MLflow: pip install 'tracegrad[mlflow]'") from exc
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _uri(self) -> str:
        return self.tracking_uri or self.client().tracking_uri

    def _experiment_id(self) -> str:
        if self.experiment is None:
            return "0"  # MLflow's default experiment
        client = self.client()
        found = client.get_experiment_by_name(self.experiment)
        return found.experiment_id if found is not None else client.create_experiment(self.experiment)

    def _previous_run(self, run_dir: Path | None) -> str | None:
        """The MLflow run of the training run in ``run_dir``, if it is in this tracking store."""
        if run_dir is None or not (run_dir / MLFLOW_FILE).is_file():
            return None
        try:
            saved = read_json(run_dir / MLFLOW_FILE)
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("tracking_uri") != self._uri():
            return None
        return saved.get("run_id")

    def _metrics(self, event: Event, step: int, figures: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        stamp = int(event.timestamp * 1000)
        metrics = [Metric(k, float(v), stamp, step) for k, v in figures.items() if v is not None]
        self.client().log_batch(self.run_id, metrics=metrics)

    def _log_version(self, folder: str, version: str | None, values: dict[str, Any]) -> None:
        if version is not None:
            if version in self._logged:
                return
            self._logged.add(version)
        for name, value in values.items():
            filename = name.replace("/", "_").replace(os.sep, "_")
            self.client().log_text(self.run_id, _text(value), f"versions/{folder}/{filename}.txt")


def _text(value: Any) -> str:
    """A value as text: strings as they are (prompts, code), the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def _report(run_dir: Path) -> Path | None:
    """The run's HTML report: written by ``tracegrad.report`` when it is there, else a
    ``report.html`` already in the run directory (or None)."""
    try:
        from tracegrad.visualize import report
    except ImportError:
        report = None
    if report is not None:
        try:
            return Path(report(run_dir))
        except Exception:
            logger.warning("the run report of %s could not be written for MLflow", run_dir, exc_info=True)
    existing = run_dir / "report.html"
    return existing if existing.is_file() else None


__all__ = ["MLFLOW_FILE", "MLflowLogger"]
