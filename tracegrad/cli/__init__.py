"""The ``tracegrad`` command: look at checkpoints from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tracegrad import __version__
from tracegrad.errors import TracegradError
from tracegrad.nodes.module import read_checkpoint


def _show(args: argparse.Namespace) -> int:
    payload = read_checkpoint(args.checkpoint)
    print(f"{args.checkpoint}: {payload.get('module', '?')}")
    for path, value in payload["parameters"].items():
        text = json.dumps(value, ensure_ascii=False)
        if not args.full and len(text) > 100:
            text = text[:97] + "..."
        print(f"  {path}: {text}")
    extra = payload.get("extra") or {}
    if extra:
        print(f"  extra: {', '.join(sorted(extra))}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracegrad", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tracegrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the parameters saved in a module checkpoint")
    show.add_argument("checkpoint")
    show.add_argument("--full", action="store_true", help="do not shorten long values")
    show.set_defaults(run=_show)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (TracegradError, OSError, json.JSONDecodeError) as exc:
        print(f"tracegrad: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
