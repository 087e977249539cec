"""The commands of ``tracegrad``: each takes the parsed arguments and returns an exit status.

Bad input raises ``TracegradError`` (``main`` prints it as one line). Text that comes from
a run (prompts, replies, values) is printed with its control characters escaped, so a
hostile value cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracegrad.errors import TracegradError

if TYPE_CHECKING:
    from tracegrad.visualize.report_data import RunView

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def demo(args: argparse.Namespace) -> int:
    """Run the demo."""
    try:
        from tracegrad.demo import add_arguments, run
    except ModuleNotFoundError as exc:
        if exc.name not in ("tracegrad.demo", "tracegrad"):
            raise
        raise TracegradError("the demo is not part of this installation of tracegrad") from None
    parser = argparse.ArgumentParser(prog="tracegrad demo", description="Run the tracegrad demo.")
    add_arguments(parser)
    return int(run(parser.parse_args(args.rest)) or 0)


def report(args: argparse.Namespace) -> int:
    """Write the self-contained HTML report of a run directory (and open it with --open)."""
    from tracegrad.visualize.report_html import report as write_report

    path = write_report(args.run_dir, args.output)
    print(path)
    if args.open:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            print(f"no web browser could be started; open {path} by hand")
    return 0


def show(args: argparse.Namespace) -> int:
    """Summarize a run directory (steps, scores, cost, final parameters), or print the
    parameters of a module checkpoint file."""
    from tracegrad.visualize.report_data import read_module_checkpoint, read_run, run_dir_of

    path = Path(args.path)
    run_dir = run_dir_of(path)
    if run_dir is not None:
        run = read_run(run_dir)
        print(_safe(_run_summary(run)))
        print(_safe(_steps_table(run)))
        print(f"final parameters ({run.best_version or 'current'}):")
        _print_values(run.parameters, args.full)
        return 0
    checkpoint = read_module_checkpoint(path)
    print(_safe(f"{path}: {checkpoint.module}"))
    _print_values(checkpoint.parameters, args.full)
    if checkpoint.extra:
        print(_safe(f"  extra: {', '.join(sorted(checkpoint.extra))}"))
    return 0


def inspect(args: argparse.Namespace) -> int:
    """Print the exact prompt and reply of the optimizer's model at one step, with its reasoning."""
    from tracegrad.visualize.diffs import value_text
    from tracegrad.visualize.report_data import read_run

    run = read_run(args.run_dir)
    step = run.step(args.step)
    print(_safe(f"step {step.step} (epoch {step.epoch}, batch {step.batch}): {step.status}"))
    if step.reason:
        print(_safe(f"  {step.reason}"))
    if not step.proposals:
        print("no proposal was made at this step: the optimizer's model was not asked")
    for proposal in step.proposals:
        print(_safe(f"\n== proposal {proposal.sample + 1}: {proposal.outcome} {proposal.reason}".rstrip()))
        if proposal.report is None:
            print("the log holds no report of this proposal")
            continue
        for label, part in proposal.report.flat():
            print(_safe(f"-- {label}: {part.status} {part.reason}".rstrip()))
            if part.reasoning:
                print(_safe(f"reasoning: {part.reasoning}"))
            for message in part.messages:
                print(_safe(f"--- prompt: {message.get('role', '?')} ---"))
                print(_safe(value_text(message.get("content", ""))))
            print("--- reply ---")
            print(_safe(part.reply) if part.reply else "(no reply)")
    return 0


def graph(args: argparse.Namespace) -> int:
    """Draw a trace saved with tracegrad.save_trace; the output's extension picks the format
    (svg, png, pdf, dot ...). Without graphviz's dot program, the DOT source is written
    beside it."""
    from tracegrad.visualize import load_trace, render

    source = Path(args.trace)
    if source.is_dir():
        raise TracegradError(f"{os.fspath(source)!r} is a directory, not a saved trace")
    out = Path(args.output) if args.output else source.with_suffix(".svg")
    print(render(load_trace(source), out))
    return 0


def diff(args: argparse.Namespace) -> int:
    """Print text diffs of the parameters of two checkpoints or run directories (exit status
    0 whether or not they differ)."""
    from tracegrad.visualize.diffs import changed_names, text_diff
    from tracegrad.visualize.report_data import read_parameters

    old, new = read_parameters(args.a), read_parameters(args.b)
    names = changed_names(old, new)
    if not names:
        print(f"the parameters of {args.a} and {args.b} are the same")
        return 0
    for name in names:
        if name not in old or name not in new:
            print(_safe(f"{name}: only in {args.a if name in old else args.b}"))
            continue
        for line in text_diff(old[name], new[name], old_label=f"{args.a}: {name}", new_label=f"{args.b}: {name}"):
            print(_safe(line))
    return 0


def _run_summary(run: RunView) -> str:
    accepted = sum(s.accepted for s in run.steps)
    spend = run.spend
    cost = "unknown cost" if spend.cost_usd is None else f"${spend.cost_usd:.4f}"
    stopped = f"stopped: {run.stop_reason}" if run.stop_reason else "not finished"
    return (
        f"{run.path}: {len(run.steps)} steps ({accepted} accepted); score {_num(run.initial_score)} -> "
        f"{_num(run.best_score)}; {spend.calls} calls, {spend.prompt_tokens}+{spend.completion_tokens} tokens, "
        f"{cost}; {stopped}"
    )


def _steps_table(run: RunView) -> str:
    header = ("step", "epoch", "status", "train", "validation", "calls", "tokens", "cost")
    rows = [
        (
            str(s.step),
            str(s.epoch),
            s.status,
            _num(s.train_score),
            _num(s.validation_score),
            str(s.spend.calls),
            str(s.spend.prompt_tokens + s.spend.completion_tokens),
            "?" if s.spend.cost_usd is None else f"${s.spend.cost_usd:.4f}",
        )
        for s in run.steps
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _print_values(values: dict[str, Any], full: bool) -> None:
    for name, value in values.items():
        text = json.dumps(value, ensure_ascii=False, default=repr)
        if not full and len(text) > 100:
            text = text[:97] + "..."
        print(_safe(f"  {name}: {text}"))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _safe(text: str) -> str:
    """``text`` with control characters (but newlines and tabs) shown as escapes."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


__all__ = ["demo", "diff", "graph", "inspect", "report", "show"]
