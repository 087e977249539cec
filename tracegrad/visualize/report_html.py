"""``report(run_dir)``: one self-contained HTML page about a training run.

The page needs nothing but itself: the style is inline, the charts are SVG drawn here,
the trace picture is inline SVG, there is no script, and its content security policy
forbids loading anything (so a browser would refuse even a link slipped in by a value).
Every value from the run is escaped by the template engine (Jinja2, autoescaping).

It shows the score curves (train and validation) and the cost and calls per step; the
timeline of the parameter versions the run adopted, each change as a text diff; every
step with its proposals -- the optimizer's reasoning, the diffs it proposed, and the
exact prompt and reply of its model, collapsed; the final parameters; and the trace
of the last step.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracegrad.errors import TracegradError
from tracegrad.visualize.diffs import changed_names, text_diff, value_text
from tracegrad.visualize.report_charts import bar_chart, line_chart
from tracegrad.visualize.report_trace import trace_picture

if TYPE_CHECKING:  # reading runs imports the training package: only when a report is written
    from tracegrad.visualize.report_data import RunView

REPORT = "report.html"


def report(run_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> Path:
    """Write the HTML report of the run in ``run_dir`` and return its path.

    ``path`` defaults to ``<run_dir>/report.html``. The file is written atomically (a
    reader never sees half a report). A missing or corrupt run directory raises a
    ``TracegradError`` saying what is wrong, and writes nothing.
    """
    from tracegrad.visualize.report_data import read_run

    run = read_run(run_dir)
    target = Path(path) if path is not None else run.path / REPORT
    page = render_report(run)
    try:
        _write_text(target, page)
    except OSError as exc:
        raise TracegradError(f"cannot write the report to {os.fspath(target)!r}: {exc.strerror or exc}") from None
    return target


def render_report(run: RunView) -> str:
    """The report's HTML for a run already read."""
    from tracegrad import __version__

    return _template().render(
        version=__version__,
        title=f"tracegrad run: {run.path.resolve().name}",
        run=run,
        accepted=sum(s.accepted for s in run.steps),
        config=[(k, v if isinstance(v, str) else json.dumps(v, default=repr)) for k, v in run.config.items()],
        charts=_charts(run),
        timeline=_timeline(run),
        trace=trace_picture(run.trace_path),
        score=_score,
        money=_money,
        text=value_text,
        diff=_diff,
    )


@functools.cache
def _template() -> Any:
    """The report's template, compiled once (Jinja2, escaping every value)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tracegrad.visualize", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def _charts(run: RunView) -> dict[str, Any]:
    steps = run.steps
    series = {"train": [(float(s.step), s.train_score) for s in steps]}
    validation = [(float(s.step), s.validation_score) for s in steps if s.validation_score is not None]
    if validation:
        start = [(0.0, run.initial_score)] if run.initial_score is not None else []
        series["validation"] = start + validation
    return {
        "score": line_chart(series, title="Score per step", y_range=(0.0, 1.0)),
        "cost": bar_chart([(float(s.step), s.spend.cost_usd or 0.0) for s in steps], title="Cost per step", fmt=_money),
        "calls": bar_chart(
            [(float(s.step), float(s.spend.calls)) for s in steps], title="Calls per step", color="#2f9e44", fmt=_count
        ),
    }


def _timeline(run: RunView) -> list[dict[str, Any]]:
    """The versions the run adopted, in order: the start, then each accepted step with its diffs."""
    start = run.versions.get(run.initial_version)
    entries: list[dict[str, Any]] = [
        {
            "label": "Start",
            "version": run.initial_version,
            "score": run.initial_score,
            "changes": [{"name": n, "diff": None, "text": value_text(v)} for n, v in (start or {}).items()],
        }
    ]
    for s in run.steps:
        if not s.accepted:
            continue
        old, new = run.versions.get(s.parent), run.versions.get(s.version)
        if old is not None and new is not None:
            changes = [(n, old.get(n), new.get(n)) for n in changed_names(old, new)]
        else:  # versions not recorded: the chosen proposal's report says what changed
            chosen = next((p for p in s.proposals if p.outcome == "chosen" and p.report), None)
            updates = [u for _, r in chosen.report.flat() for u in r.updates] if chosen and chosen.report else []
            changes = [(u.name, u.old, u.new) for u in updates if u.old != u.new]
        entries.append(
            {
                "label": f"Step {s.step}",
                "version": s.version,
                "score": s.validation_score if s.validation_score is not None else s.train_score,
                "changes": [{"name": n, "diff": _diff(a, b), "text": ""} for n, a, b in changes],
            }
        )
    return entries


def _diff(old: Any, new: Any) -> list[tuple[str, str]]:
    """Diff lines with their CSS class, without the two file-name lines."""
    out = []
    for line in text_diff(old, new)[2:]:
        cls = "hunk" if line.startswith("@@") else {"+": "add", "-": "del"}.get(line[:1], "ctx")
        out.append((cls, line))
    return out


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _count(value: float) -> str:
    return f"{value:.3g}"


def _write_text(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["REPORT", "render_report", "report"]
