"""Tune a number from text feedback: the launch angle that lands a ball on a target.

The feedback is a sentence ("it fell 8.3 m short"), not a gradient: OptoPrime reads
the traced computation, the current angle and that sentence, and proposes a new angle.

    python examples/tune_number.py                  # the embedded model if installed, else an offline stand-in
    python examples/tune_number.py --model openai/gpt-4o-mini   # or set TRACEGRAD_MODEL
"""

from __future__ import annotations

import argparse
import json
import math
import re

import tracegrad as tg

SPEED = 20.0  # m/s
TARGET = 30.0  # m
TOLERANCE = 0.1  # m


@tg.bundle
def flight_distance(angle, speed):
    """Distance in metres a ball travels when thrown at `angle` degrees with `speed` m/s (no drag)."""
    return speed**2 * math.sin(2 * math.radians(angle)) / 9.81


def judge(distance: float) -> str:
    """Text feedback, as a person watching the throw would give it."""
    miss = distance - TARGET
    if abs(miss) <= TOLERANCE:
        return f"The ball landed at {distance:.2f} m, on the target at {TARGET} m. Perfect."
    where = "short of" if miss < 0 else "beyond"
    return f"The ball landed at {distance:.2f} m, {abs(miss):.2f} m {where} the target at {TARGET} m."


# -- a stand-in for a model, so the example runs offline -----------------------------------


def stand_in_model(request) -> str:
    """NOT a language model: a few lines that read the prompt the way a model would
    (current angle, landing distance, earlier tries in #History) and propose an angle
    by the secant method. Use --model for a real model."""
    prompt = request.messages[1]["content"]
    angle = float(re.search(r"^angle=([-\d.e]+)", prompt, re.M).group(1))
    landed = float(re.search(r"landed at ([-\d.]+) m", prompt.split("#Feedback")[-1]).group(1))
    tries = [
        (float(a), float(d)) for a, d in re.findall(r"angle=([-\d.e]+)\nfeedback: The ball landed at ([-\d.]+)", prompt)
    ]
    slope = 1.0  # metres per degree, a first guess
    if tries and tries[-1][0] != angle:
        slope = (landed - tries[-1][1]) / (angle - tries[-1][0]) or slope
    new = min(45.0, max(0.0, angle + (TARGET - landed) / slope))
    return json.dumps(
        {
            "reasoning": f"Landed at {landed} m for {angle} degrees; {slope:.2f} m per degree, so aim at {new:.3f}.",
            "suggestion": {"angle": round(new, 4)},
        }
    )


def choose_llm(model: str | None) -> tg.LLM:
    """The configured model, else the offline stand-in."""
    model = tg.configured_model(model)  # the argument, $TRACEGRAD_MODEL or the embedded model
    if model:
        return tg.LLM(model)
    print("(no model configured: using the offline stand-in; pass --model NAME for a real one)")
    return tg.LLM("stand-in/tune-number", transport=tg.ScriptedTransport(stand_in_model), cache=False)


def run(llm: tg.LLM, steps: int = 10) -> float:
    """Optimize the angle; returns the final landing distance."""
    angle = tg.parameter(10.0, tg.Number(0, 45), name="angle", description="launch angle in degrees")
    speed = tg.node(SPEED, name="speed")
    opt = tg.OptoPrime([angle], llm=llm, memory_size=3)
    distance = flight_distance(angle, speed)
    for step in range(1, steps + 1):
        feedback = judge(distance.data)
        print(f"step {step}: angle={angle.data:.4f} -> {feedback}")
        if "Perfect" in feedback:
            break
        opt.zero_feedback()
        opt.backward(distance, feedback)
        report = opt.step()
        print(f"   model: {report.reasoning}")
        distance = flight_distance(angle, speed)
    return distance.data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a litellm model name, or local (default: $TRACEGRAD_MODEL, the embedded model, a stand-in)"
    )
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    final = run(choose_llm(args.model), args.steps)
    print(f"final distance: {final:.2f} m (target {TARGET} m)")


if __name__ == "__main__":
    try:
        main()
    except tg.TracegradError as exc:  # a failed model call, a budget reached ...
        raise SystemExit(f"stopped: {exc}") from None
