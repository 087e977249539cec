"""The embedded model's speed, and what an OptoPrime step costs on it.

Measured in this process with the default ``LLM()`` model (llama.cpp in process):

* ``load_s``: loading the model file;
* ``prompt_tokens_per_s``: prefill of a fresh prompt of about 500 tokens (one reply
  token); ``completion_tokens_per_s``: decoding 100 tokens (their prompt's prefill,
  at the measured rate, taken off);
* ``step_s``: the median wall time of ``OptoPrime.step()`` on the 20-operation graph
  of ``benchmarks/optimizer_step.py`` (same feedback), with its mean calls, prompt,
  cached prompt and reply tokens per step; ``step_floor_s`` is the median over steps
  of what the step's tokens cost at the measured rates (uncached prompt tokens /
  prefill rate + reply tokens / decode rate). Targets: ``step_s <= 1.2 x
  step_floor_s`` and ``calls_per_step <= 1.2``.

When the reference library is installed (``make refenv``), both libraries' OptoPrime
take the same steps on the same graph through one llama.cpp server (``LocalServer``):
``server_step_s`` (ours) and ``reference_step_s``, with the target
``step_ratio_vs_reference <= 0.6``. Sampling is greedy (temperature 0, seed 0) on
both sides.

Prints progress on stderr and one JSON line last, also when a part fails (its error
is recorded).

    python benchmarks/local_model.py              # 5 steps each
    python benchmarks/local_model.py --steps 1    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _reference import reference_python
from optimizer_step import FEEDBACK, GRAPH, build_tracegrad
from opto_problems.reference import launch

import tracegrad as tg
from tracegrad.llm.local import DEFAULT_NAME, LocalServer, LocalTransport

N_OPS = 20
PREFILL_TOKENS = 500
DECODE_TOKENS = 100
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 0}
TIMEOUT = 600.0  # seconds per model call: a busy machine is slow, and a cut-off step measures nothing


def fresh_prompt(tokens: int) -> str:
    """A prompt of about ``tokens`` tokens that no earlier request began with."""
    rng = random.Random(time.time_ns())
    transport = LocalTransport()
    lines = [f"Request {rng.getrandbits(64):x}. Which item is the heaviest? Reply with its number."]
    while transport.count_tokens("local", "\n".join(lines))[0] < tokens:
        lines.extend(f"Item {len(lines)} weighs {rng.randint(1, 999)} grams." for _ in range(2))
    return "\n".join(lines)


def rates(llm: tg.LLM) -> dict[str, float]:
    """Prefill and decode rates (tokens per second) of plain completions."""
    prefill = llm.complete(fresh_prompt(PREFILL_TOKENS), max_tokens=1)
    fresh = prefill.usage.prompt_tokens - prefill.usage.cached_prompt_tokens
    prompt_rate = fresh / prefill.latency_s
    decode = llm.complete(
        f"Request {time.time_ns():x}. Write the numbers from 1 to 1000, separated by spaces.", max_tokens=DECODE_TOKENS
    )
    prefill_s = (decode.usage.prompt_tokens - decode.usage.cached_prompt_tokens) / prompt_rate
    return {
        "prompt_tokens_per_s": round(prompt_rate, 2),
        "completion_tokens_per_s": round(decode.usage.completion_tokens / (decode.latency_s - prefill_s), 2),
        "prefill_prompt_tokens": prefill.usage.prompt_tokens,
        "decode_completion_tokens": decode.usage.completion_tokens,
    }


def ours_steps(llm: tg.LLM, steps: int) -> list[dict[str, Any]]:
    """``steps`` OptoPrime steps on the graph: wall seconds and spend of each."""
    params, out = build_tracegrad(N_OPS)
    opt = tg.OptoPrime(params, llm=llm)
    done = []
    for _ in range(steps):
        opt.zero_feedback()
        out.backward(FEEDBACK)
        started = time.perf_counter()
        report = opt.step()
        seconds = time.perf_counter() - started
        done.append(
            {
                "seconds": round(seconds, 3),
                "calls": report.calls,
                "prompt_tokens": report.prompt_tokens,
                "cached_prompt_tokens": report.cached_prompt_tokens,
                "completion_tokens": report.completion_tokens,
                "status": report.status,
            }
        )
        print(f"step: {done[-1]}", file=sys.stderr, flush=True)
    return done


def _mean(steps: list[dict[str, Any]], key: str) -> float:
    return round(statistics.fmean(s[key] for s in steps), 2)


def step_figures(steps: list[dict[str, Any]], measured: dict[str, float]) -> dict[str, Any]:
    """Median step time, spend per step, the token floor and the two targets."""
    floors = [
        (s["prompt_tokens"] - s["cached_prompt_tokens"]) / measured["prompt_tokens_per_s"]
        + s["completion_tokens"] / measured["completion_tokens_per_s"]
        for s in steps
    ]
    figures = {
        "step_s": round(statistics.median(s["seconds"] for s in steps), 3),
        "calls_per_step": _mean(steps, "calls"),
        "prompt_tokens_per_step": _mean(steps, "prompt_tokens"),
        "cached_prompt_tokens_per_step": _mean(steps, "cached_prompt_tokens"),
        "reply_tokens_per_step": _mean(steps, "completion_tokens"),
        "step_floor_s": round(statistics.median(floors), 3),
    }
    figures["step_vs_floor"] = round(figures["step_s"] / figures["step_floor_s"], 3)
    figures["step_within_1_2x_floor"] = figures["step_s"] <= 1.2 * figures["step_floor_s"]
    figures["calls_per_step_at_most_1_2"] = figures["calls_per_step"] <= 1.2
    return figures


def side_by_side(steps: int) -> dict[str, Any]:
    """Both libraries' steps on the same graph through one local server."""
    figures: dict[str, Any] = {}
    with LocalServer() as server:
        ours = ours_steps(server.llm(cache=False, timeout=TIMEOUT, **GREEDY), steps)
        figures["server_step_s"] = round(statistics.median(s["seconds"] for s in ours), 3)
        figures["server_reply_tokens_per_step"] = _mean(ours, "completion_tokens")
        job = {"task": "step", "graph": GRAPH, "n_ops": N_OPS, "feedback": FEEDBACK, "steps": steps}
        result = launch({**job, "params": {**GREEDY, "timeout": TIMEOUT}}, server.api_base, timeout=steps * 900)
    if result is None or "error" in result:
        figures["reference_error"] = "not installed (make refenv)" if result is None else result["error"]
        return figures
    ref = result["steps"]
    figures["reference_step_s"] = round(statistics.median(s["seconds"] for s in ref), 3)
    figures["reference_calls_per_step"] = _mean(ref, "calls")
    figures["reference_prompt_tokens_per_step"] = _mean(ref, "prompt_tokens")
    figures["reference_reply_tokens_per_step"] = _mean(ref, "completion_tokens")
    figures["step_ratio_vs_reference"] = round(figures["server_step_s"] / figures["reference_step_s"], 3)
    figures["step_at_most_0_6x_reference"] = figures["step_ratio_vs_reference"] <= 0.6
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps timed on each side (default 5)")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"model": DEFAULT_NAME, "graph_ops": N_OPS, "steps": args.steps}
    try:
        started = time.perf_counter()
        LocalTransport().count_tokens("local", "load")  # loads the model
        figures["load_s"] = round(time.perf_counter() - started, 3)
        llm = tg.LLM("local", cache=False, timeout=TIMEOUT, **GREEDY)
        measured = rates(llm)
        figures.update(measured)
        figures.update(step_figures(ours_steps(llm, args.steps), measured))
    except Exception as exc:
        figures["error"] = f"{type(exc).__name__}: {exc}"[:1000]
    if reference_python() is None:
        figures["reference"] = "not installed (make refenv)"
    else:
        try:
            figures.update(side_by_side(args.steps))
        except Exception as exc:
            figures["reference_error"] = f"{type(exc).__name__}: {exc}"[:1000]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
