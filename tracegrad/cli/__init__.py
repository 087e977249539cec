"""The ``tracegrad`` command: run the demo, and look at runs, checkpoints and traces from the shell.

    tracegrad demo [options]                 the demo (tracegrad demo --help lists its options)
    tracegrad report RUN_DIR [-o PATH] [--open]   write the run's HTML report (and open it)
    tracegrad show PATH [--full]             a run directory's steps, scores, cost and final
                                             parameters, or a module checkpoint's parameters
    tracegrad inspect RUN_DIR --step N       the exact prompt and reply of the optimizer's model at step N
    tracegrad graph TRACE.json [-o OUT.svg]  draw a saved trace
    tracegrad diff A B                       text diffs of the parameters of two checkpoints or runs

Bad input (a missing or corrupt file or directory) ends the command with exit status 1
and one line on stderr saying what is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tracegrad import __version__
from tracegrad.cli import commands
from tracegrad.errors import TracegradError


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser, with one subcommand per command."""
    parser = argparse.ArgumentParser(
        prog="tracegrad",
        description="Run the demo, and look at training runs, checkpoints and traces.",
        epilog="Run 'tracegrad COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"tracegrad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the demo (its options: tracegrad demo --help)",
        description="Run the demo; the demo's own options follow the command.",
        add_help=False,
    )
    demo.set_defaults(run=commands.demo)

    report = sub.add_parser("report", help="write the HTML report of a run", description=commands.report.__doc__)
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by tracegrad.train")
    report.add_argument("-o", "--output", metavar="PATH", help="where to write it (default RUN_DIR/report.html)")
    report.add_argument("--open", action="store_true", help="open the report in a web browser")
    report.set_defaults(run=commands.report)

    show = sub.add_parser("show", help="summarize a run or a module checkpoint", description=commands.show.__doc__)
    show.add_argument("path", metavar="PATH", help="a run directory or a module checkpoint file")
    show.add_argument("--full", action="store_true", help="do not shorten long values")
    show.set_defaults(run=commands.show)

    inspect = sub.add_parser(
        "inspect", help="print the prompt and reply of a step", description=commands.inspect.__doc__
    )
    inspect.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by tracegrad.train")
    inspect.add_argument("--step", type=int, required=True, metavar="N", help="the step's number (from 1)")
    inspect.set_defaults(run=commands.inspect)

    graph = sub.add_parser("graph", help="draw a saved trace", description=commands.graph.__doc__)
    graph.add_argument("trace", metavar="FILE.json", help="a trace saved with tracegrad.save_trace")
    graph.add_argument(
        "-o", "--output", metavar="OUT", help="the picture's file (default FILE.svg); its extension is the format"
    )
    graph.set_defaults(run=commands.graph)

    diff = sub.add_parser(
        "diff", help="diff the parameters of two checkpoints or runs", description=commands.diff.__doc__
    )
    diff.add_argument("a", metavar="A", help="a run directory or a module checkpoint file")
    diff.add_argument("b", metavar="B", help="a run directory or a module checkpoint file")
    diff.set_defaults(run=commands.diff)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(args.run(args))
    except (TracegradError, OSError, ValueError, RecursionError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"tracegrad {args.command}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tracegrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
