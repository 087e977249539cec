"""Fix a buggy function from failing tests: the function's code is the parameter.

``is_palindrome`` is a trainable bundle; each test case is traced, failing cases get
feedback, and OptoPrime proposes new source for the function (which must keep its
name and signature) until every test passes.

    python examples/fix_code.py                     # the embedded model if installed, else an offline stand-in
    python examples/fix_code.py --model openai/gpt-4o-mini      # or set TRACEGRAD_MODEL
"""

from __future__ import annotations

import argparse
import json
import re

import tracegrad as tg

TESTS = [
    ("level", True),
    ("hello", False),
    ("Racecar", True),
    ("A man, a plan, a canal: Panama!", True),
    ("Was it a car or a cat I saw?", True),
    ("Palindrome", False),
]


@tg.bundle(trainable=True)
def is_palindrome(text):
    """Whether text reads the same backwards, ignoring case, spaces and punctuation."""
    return text == text[::-1]


def run_tests() -> list[tuple[tg.Node, str]]:
    """Run every test case through the traced function: (output, feedback) per failure."""
    failures = []
    for text, expected in TESTS:
        try:
            got = is_palindrome(tg.node(text, name="text"))
        except tg.ExecutionError as err:
            failures.append((err.node, f"is_palindrome({text!r}) raised {err.exception!r}; expected {expected}."))
            continue
        if got.data != expected:
            failures.append((got, f"is_palindrome({text!r}) returned {got.data!r}; expected {expected}."))
    return failures


# -- a stand-in for a model, so the example runs offline -----------------------------------

_NORMALIZE = {
    "case": "    text = text.lower()\n",
    "punctuation": '    text = "".join(ch for ch in text if ch.isalnum())\n',
}


def stand_in_model(request) -> str:
    """NOT a language model: reads the current code and the failing tests from the
    prompt, guesses what the failures have in common, and adds one normalization line
    to the code per step, the way a careful programmer fixes one thing at a time.
    Use --model for a real model."""
    prompt = request.messages[1]["content"]
    code = re.search(r"^is_palindrome_code =.*?\n```\n(.*?)\n```", prompt, re.M | re.S).group(1) + "\n"
    failing = re.findall(r"is_palindrome\('(.*?)'\) returned", prompt.split("#Feedback")[-1])
    if any(not ch.isalnum() for text in failing for ch in text) and "isalnum" not in code:
        fix, why = _NORMALIZE["punctuation"], "failing inputs contain spaces or punctuation"
    elif any(ch.isupper() for text in failing for ch in text) and "lower()" not in code:
        fix, why = _NORMALIZE["case"], "failing inputs mix upper and lower case"
    else:
        return json.dumps({"reasoning": "I see nothing left to change.", "suggestion": {}})
    lines = code.splitlines(keepends=True)
    body = next(i for i, line in enumerate(lines) if line.strip().startswith("return"))
    new_code = "".join(lines[:body]) + fix + "".join(lines[body:])
    return json.dumps(
        {"reasoning": f"The {why}; normalize the text first.", "suggestion": {"is_palindrome_code": new_code}}
    )


def choose_llm(model: str | None) -> tg.LLM:
    """The configured model, else the offline stand-in."""
    model = tg.configured_model(model)  # the argument, $TRACEGRAD_MODEL or the embedded model
    if model:
        return tg.LLM(model)
    print("(no model configured: using the offline stand-in; pass --model NAME for a real one)")
    return tg.LLM("stand-in/fix-code", transport=tg.ScriptedTransport(stand_in_model), cache=False)


def run(llm: tg.LLM, steps: int = 5) -> int:
    """Optimize the code; returns the number of tests still failing."""
    opt = tg.OptoPrime([is_palindrome.parameter], llm=llm)
    failures = run_tests()
    for step in range(1, steps + 1):
        print(f"step {step}: {len(TESTS) - len(failures)}/{len(TESTS)} tests pass")
        if not failures:
            break
        opt.zero_feedback()
        for output, feedback in failures:
            opt.backward(output, feedback)
        report = opt.step()
        print(f"   model: {report.reasoning} ({report.status})")
        failures = run_tests()
    print("final code:\n" + is_palindrome.parameter.data)
    return len(failures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a litellm model name, or local (default: $TRACEGRAD_MODEL, the embedded model, a stand-in)"
    )
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    failing = run(choose_llm(args.model), args.steps)
    print("all tests pass" if not failing else f"{failing} tests still fail")


if __name__ == "__main__":
    try:
        main()
    except tg.TracegradError as exc:  # a failed model call, a budget reached ...
        raise SystemExit(f"stopped: {exc}") from None
