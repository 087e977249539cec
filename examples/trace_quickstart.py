"""The first example of the Trace paper's library, in tracegrad: a function's code is trained.

``strange_sort_list`` should return a list in "strange order" (the minimum, then the
maximum of the rest, then the minimum, ...), but its first version just sorts. It is a
trainable bundle, so its source is a parameter. Each test case is traced, including the
comparison with the expected output (``output == expected`` is a traced operation); a
failing case gets the feedback "test case failed", a crash gives its error node as the
output to learn from, and OptoPrime rewrites the function until every case passes. The
trained function then runs on an input it never saw, and the code is saved.

    python examples/trace_quickstart.py                      # the embedded model if installed, else an offline stand-in
    python examples/trace_quickstart.py --model openai/gpt-4o-mini   # or set TRACEGRAD_MODEL
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import tracegrad as tg

CASES = [([1, 2, 3, 4], [1, 4, 2, 3]), ([5, 5, 5, 5], [5, 5, 5, 5]), ([], []), ([1, 2, 3], [1, 3, 2])]


@tg.bundle(trainable=True)
def strange_sort_list(lst):
    """Given a list of integers, return it in strange order: start with the minimum,
    then the maximum of the remaining integers, then the minimum, and so on."""
    lst = sorted(lst)
    return lst


def run_cases() -> list[tuple[tg.Node, str]]:
    """Run every case through the traced function: ``(output, feedback)`` per failure."""
    failures = []
    for given, expected in CASES:
        try:
            output = strange_sort_list(given)
        except tg.ExecutionError as err:  # the exception is a node of the graph: learn from it
            failures.append((err.node, f"strange_sort_list({given}) raised {err.exception!r}"))
            continue
        passed = output == expected  # a traced comparison (the reference's output.eq(expected))
        if not passed:
            failures.append((passed, f"test case failed: strange_sort_list({given}) returned {output.data}"))
    return failures


# -- a stand-in for a model, so the example runs offline -----------------------------------

_INTERLEAVE = '''\
def strange_sort_list(lst):
    """Given a list of integers, return it in strange order: start with the minimum,
    then the maximum of the remaining integers, then the minimum, and so on."""
    lst = sorted(lst)
    out = []
    while lst:
        out.append(lst.pop(0))
        out.append(lst.pop())
    return out
'''
_GUARDED = _INTERLEAVE.replace(
    "        out.append(lst.pop())\n", "        if lst:\n            out.append(lst.pop())\n"
)


def stand_in_model(request) -> str:
    """NOT a language model: it knows this one task. It reads the current code and the
    feedback from the prompt and answers with the next of two prepared rewrites, the way
    a first attempt and its fix would go. Use --model for a real model."""
    prompt = request.messages[1]["content"]
    code = re.search(r"^strange_sort_list_code =.*?\n```\n(.*?)\n```", prompt, re.M | re.S).group(1) + "\n"
    feedback = prompt.split("#Feedback")[-1]
    if "pop from empty list" in feedback and "if lst:" not in code:
        why, new = "An odd-length list empties before the second pop; pop the maximum only if one is left.", _GUARDED
    elif "pop(" not in code:
        why, new = "The code only sorts; take the minimum and the maximum in turn from the sorted list.", _INTERLEAVE
    else:
        return json.dumps({"reasoning": "I see nothing left to change.", "suggestion": {}})
    return json.dumps({"reasoning": why, "suggestion": {"strange_sort_list_code": new}})


def choose_llm(model: str | None) -> tg.LLM:
    """The configured model, else the offline stand-in."""
    model = tg.configured_model(model)  # the argument, $TRACEGRAD_MODEL or the embedded model
    if model:
        return tg.LLM(model)
    print("(no model configured: using the offline stand-in; pass --model NAME for a real one)")
    return tg.LLM("stand-in/quickstart", transport=tg.ScriptedTransport(stand_in_model), cache=False)


def run(llm: tg.LLM, epochs: int = 4, out: Path = Path("out")) -> int:
    """Train the function; returns the number of cases still failing."""
    optimizer = tg.OptoPrime(strange_sort_list.parameter, llm=llm)
    failures = run_cases()
    first = len(CASES) - len(failures)
    for epoch in range(1, epochs + 1):
        print(f"epoch {epoch}: {len(CASES) - len(failures)}/{len(CASES)} test cases pass")
        if not failures:
            break
        optimizer.zero_feedback()
        for output, feedback in failures:
            optimizer.backward(output, feedback)
        report = optimizer.step()
        print(f"   {report.status}: {report.reasoning}")
        failures = run_cases()
    print(f"test cases passed: {first}/{len(CASES)} -> {len(CASES) - len(failures)}/{len(CASES)}")
    print("trained code:\n" + strange_sort_list.parameter.data)
    try:
        print(f"on a new input: strange_sort_list([5, 3, 2, 5]) = {strange_sort_list([5, 3, 2, 5]).data}")
    except tg.ExecutionError as err:
        print(f"on a new input: {err}")
    optimizer.save(out / "strange_sort_list.json")  # the code and the optimizer state, as JSON
    print(f"saved to {out / 'strange_sort_list.json'}")
    return len(failures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a litellm model name, or local (default: $TRACEGRAD_MODEL, the embedded model, a stand-in)"
    )
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    failing = run(choose_llm(args.model), args.epochs)
    print("all test cases pass" if not failing else f"{failing} test cases still fail")


if __name__ == "__main__":
    try:
        main()
    except tg.TracegradError as exc:  # a failed model call, a budget reached ...
        raise SystemExit(f"stopped: {exc}") from None
