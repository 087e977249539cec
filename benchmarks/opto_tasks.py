"""OptoPrime on a dozen small problems with the embedded model, side by side with the reference.

The problems (``benchmarks/opto_problems``: numbers from text feedback, code repair
from failing tests, constrained strings, categorical choices, two-parameter
pipelines) are written once; each library builds them with its own ``bundle`` and
nodes and optimizes them with its own OptoPrime, from the same initial values, with
the same feedback text, the same step limit and the same sampling settings. Each
problem runs ``--runs`` times (one seed per run, the same seeds on both sides) until
solved or out of steps. Both sides talk to one llama.cpp server (``LocalServer``)
running the embedded model, so they share the model, its settings and the machine;
the reference library (``make refenv``) runs in its own environment. Runs go in
blocks, one per seed with every problem once, and the side that goes first alternates
from block to block: both sides meet the same machine load on average, and no run
starts with the very prompt the server has just seen (only a fixed system prompt is
reused from one run to the next, as for any user of a long-lived server).

Prints progress on stderr and one JSON line last: per side, the success rate and the
medians over solved runs of steps, model calls, tokens and seconds to a solution,
overall and per problem, and the targets (success rate at least 1.5x the
reference's, median seconds to a solution no higher). A side that fails is recorded
as an error and the line is still printed.

    python benchmarks/opto_tasks.py --quick            # 1 run of 3 problems, both sides
    python benchmarks/opto_tasks.py --runs 3 --steps 5 --side ours --problems thermostat tagline
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from opto_problems import PROBLEMS, QUICK, Spec, run_problem, side_figures
from opto_problems.reference import launch
from opto_problems.runner import SPENT, check_problem, progress

import tracegrad as tg
from tracegrad.llm.local import DEFAULT_NAME, LocalServer

NOT_INSTALLED = "not installed (make refenv)"


def kind(spec: Spec) -> tg.Kind:
    """The tracegrad kind of a problem's parameter spec."""
    if spec.kind == "number":
        return tg.Number(low=spec.low, high=spec.high)
    if spec.kind == "integer":
        low, high = (None if b is None else int(b) for b in (spec.low, spec.high))
        return tg.Integer(low=low, high=high)
    if spec.kind == "choice":
        return tg.Choice(spec.options)
    return tg.Text()


class Ours:
    """tracegrad as a problem adapter (see ``opto_problems.runner.Lib``)."""

    bundle = staticmethod(tg.bundle)

    def node(self, value: Any, name: str) -> tg.Node:
        return tg.node(value, name=name)

    def param(self, value: Any, name: str, spec: Spec) -> tg.Node:
        return tg.node(value, name=name, trainable=True, kind=kind(spec))

    def call(self, fn: Any, *args: Any) -> tuple[Any, str | None]:
        try:
            return fn(*args), None
        except tg.ExecutionError as err:
            return err.node, f"{type(err.exception).__name__}: {err.exception}"

    def assign(self, param: tg.ParameterNode, value: Any) -> None:
        param.update(value)

    def step(self, optimizer: tg.OptoPrime, output: tg.Node, feedback: str) -> dict[str, int]:
        optimizer.zero_feedback()
        output.backward(feedback)
        report = optimizer.step()
        return {k: getattr(report, k) for k in SPENT}


Block = list[tuple[str, int]]


def run_ours(server: LocalServer, block: Block, steps: int, params: dict[str, Any]) -> tuple[list[dict], str | None]:
    """Our runs of ``block`` ((problem, seed) pairs) through the server, and no error."""
    lib, records = Ours(), []
    for name, seed in block:

        def optimizer(parameters: list[Any], seed: int = seed) -> tg.OptoPrime:
            return tg.OptoPrime(parameters, llm=server.llm(cache=False, seed=seed, **params))

        record = run_problem(PROBLEMS[name], lib, optimizer, steps)
        print(progress("ours", seed, record), file=sys.stderr, flush=True)
        records.append(record)
    return records, None


def run_reference(
    server: LocalServer, block: Block, steps: int, params: dict[str, Any]
) -> tuple[list[dict], str | None]:
    """The reference's runs of ``block`` through the same server, in its own environment,
    and why it failed (None if it did not)."""
    job = {"task": "problems", "runs": block, "steps": steps, "params": params}
    result = launch(job, server.api_base, timeout=len(block) * steps * 900)
    if result is None:
        return [], NOT_INSTALLED
    if "error" in result:
        return [], result["error"]
    return result["records"], None


SIDES = {"ours": run_ours, "reference": run_reference}


def targets(ours: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Our success rate against 1.5x the reference's, our median seconds against its."""
    figures: dict[str, Any] = {}
    rate, ref_rate = ours["solved"] / ours["runs"], reference["solved"] / reference["runs"]
    figures["success_ratio_vs_reference"] = round(rate / ref_rate, 3) if ref_rate else None
    figures["success_rate_at_least_1_5x_reference"] = rate > 0 and rate >= 1.5 * ref_rate
    seconds, ref_seconds = ours["median_seconds"], reference["median_seconds"]
    if seconds is not None and ref_seconds is not None:
        figures["seconds_ratio_vs_reference"] = round(seconds / ref_seconds, 3)
        figures["median_seconds_not_higher"] = seconds <= ref_seconds
    else:  # a side that solved nothing has no time to a solution: only ours solving beats it
        figures["median_seconds_not_higher"] = seconds is not None
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per problem, one seed each (default 3)")
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps allowed per run (default 5)")
    parser.add_argument("--problems", nargs="+", choices=sorted(PROBLEMS), help="the problems to run (default: all)")
    parser.add_argument("--side", choices=("ours", "reference", "both"), default="both")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of both sides")
    parser.add_argument("--quick", action="store_true", help=f"1 run of {', '.join(QUICK)} (a smoke run)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="no model: check each problem starts unsolved and its answer solves it",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.problems = 1, args.problems or list(QUICK)
    args.problems = args.problems or list(PROBLEMS)
    if args.runs < 1 or args.steps < 1:
        parser.error("--runs and --steps must be at least 1")
    return args


def check(names: list[str], side: str) -> dict[str, Any]:
    """The problems that are broken on each side (see ``check_problem``)."""
    figures: dict[str, Any] = {"problems": names}
    if side in ("ours", "both"):
        figures["ours_broken"] = [b for b in (check_problem(PROBLEMS[n], Ours()) for n in names) if b]
    if side in ("reference", "both"):
        result = launch({"task": "check", "problems": names}, None, timeout=120)
        figures["reference_broken"] = NOT_INSTALLED if result is None else result.get("broken", result)
    return figures


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check:
        print(json.dumps(check(args.problems, args.side)))
        return
    params = {"temperature": args.temperature, "timeout": 600.0}
    figures: dict[str, Any] = {
        "model": DEFAULT_NAME,
        "served_by": "LocalServer (llama.cpp, one request at a time)",
        "runs": args.runs,
        "steps": args.steps,
        "temperature": args.temperature,
        "problems": args.problems,
    }
    sides = ["ours", "reference"] if args.side == "both" else [args.side]
    records: dict[str, list[dict]] = {side: [] for side in sides}
    errors: dict[str, list[str]] = {side: [] for side in sides}
    started = time.perf_counter()
    try:
        with LocalServer() as server:
            for seed in range(1, args.runs + 1):
                # One block of runs per seed, every problem once; the side that goes first
                # alternates, so that both meet the same machine load on average.
                block = [(name, seed) for name in args.problems]
                for side in sides if seed % 2 else sides[::-1]:
                    if NOT_INSTALLED in errors[side]:
                        continue
                    try:
                        done, error = SIDES[side](server, block, args.steps, params)
                    except Exception as exc:
                        done, error = [], f"{type(exc).__name__}: {exc}"[:1000]
                    records[side] += done
                    if error:
                        errors[side].append(error)
    except Exception as exc:  # the server did not start
        figures["error"] = f"{type(exc).__name__}: {exc}"[:1000]
    for side in sides:
        figures[side] = side_figures(records[side], args.problems) if records[side] else {}
        if errors[side]:
            figures[side]["error"] = "; ".join(dict.fromkeys(errors[side]))
    if all(figures.get(side, {}).get("runs") for side in ("ours", "reference")):
        figures.update(targets(figures["ours"], figures["reference"]))
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
