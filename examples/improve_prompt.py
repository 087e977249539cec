"""Improve a prompt against a small labelled set (BIG-bench word_sorting).

The task model gets only a list of words and a system prompt that starts out as
"Answer the question."; the prompt is the parameter. Each step runs a small batch of
training examples, marks the wrong answers with the expected ones, and lets OptoPrime
rewrite the prompt. Accuracy on held-out examples is reported before and after.

    python examples/improve_prompt.py               # the embedded model if installed, else offline stand-ins
    python examples/improve_prompt.py --model openai/gpt-4o-mini   # or set TRACEGRAD_MODEL
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import tracegrad as tg

DATA = Path(__file__).resolve().parent / "data" / "word_sorting_sample.json"
TaskModel = Callable[[str, str], str]


def load() -> tuple[list[dict], list[dict]]:
    """Six training and six validation examples (fixed split)."""
    examples = json.loads(DATA.read_text())["examples"]
    return examples[:6], examples[6:12]


def make_ask(task_model: TaskModel):
    @tg.bundle
    def ask(instruction, words):
        """Ask the task model: `instruction` is its system prompt, `words` the user message; returns its reply."""
        return task_model(instruction, words).strip()

    return ask


def accuracy(ask, instruction: tg.Node, examples: list[dict]) -> float:
    with tg.tracing(False):
        return sum(ask(instruction, e["input"]).data == e["target"] for e in examples) / len(examples)


# -- stand-ins for models, so the example runs offline -----------------------------------------


def stand_in_task_model(instruction: str, words: str) -> str:
    """NOT a language model: follows a prompt only as far as it literally asks to sort
    and to separate with spaces; otherwise it chats, like an unprompted model might."""
    text = instruction.lower()
    items = words.split()
    if "sort" not in text and "alphabetical" not in text:
        return f"Here are your words: {', '.join(items)}."
    return (" " if "space" in text else ", ").join(sorted(items))


def stand_in_optimizer(request) -> str:
    """NOT a language model: reads the prompt and the wrong answers with their expected
    ones from the feedback, and adds the one instruction that the mistakes point to."""
    prompt = request.messages[1]["content"]
    current = ast.literal_eval(re.search(r"^instruction=(.*?)(?:  #.*)?$", prompt, re.M).group(1))
    wrong = re.findall(r"Expected '(.*?)', got '(.*?)'", prompt.split("#Feedback")[-1])
    if not wrong:
        return json.dumps({"reasoning": "All answers are right.", "suggestion": {}})
    expected, got = wrong[0]
    if "sort" not in current.lower() and expected.split() == sorted(expected.split()):
        add, why = "Sort the given words alphabetically.", "the expected answers are the words in alphabetical order"
    elif "," in got and "," not in expected:
        add, why = (
            "Reply with the sorted words separated by single spaces and nothing else.",
            "answers must be bare, space-separated words",
        )
    else:
        return json.dumps({"reasoning": "I cannot tell what is wrong.", "suggestion": {}})
    return json.dumps(
        {"reasoning": f"Judging by the feedback, {why}.", "suggestion": {"instruction": f"{current} {add}"}}
    )


def choose_models(model: str | None) -> tuple[tg.LLM, TaskModel]:
    """(optimizer model, task model): the configured model for both, else stand-ins."""
    model = tg.configured_model(model)  # the argument, $TRACEGRAD_MODEL or the embedded model
    if model:
        task_llm = tg.LLM(model, temperature=0)

        def task_model(instruction: str, words: str) -> str:
            messages = [{"role": "system", "content": instruction}, {"role": "user", "content": words}]
            return task_llm.complete(messages).text

        return tg.LLM(model), task_model
    print("(no model configured: using offline stand-ins; pass --model NAME for a real one)")
    return tg.LLM(
        "stand-in/improve-prompt", transport=tg.ScriptedTransport(stand_in_optimizer), cache=False
    ), stand_in_task_model


def run(llm: tg.LLM, task_model: TaskModel, steps: int = 4) -> tuple[float, float]:
    """Optimize the prompt; returns validation accuracy before and after."""
    train, val = load()
    ask = make_ask(task_model)
    instruction = tg.parameter(
        "Answer the question.",
        tg.Text(max_length=600),
        name="instruction",
        description="the task model's system prompt",
    )
    before = accuracy(ask, instruction, val)
    opt = tg.OptoPrime([instruction], llm=llm)
    for step in range(1, steps + 1):
        batch = [train[(3 * step + i) % len(train)] for i in range(3)]
        opt.zero_feedback()
        correct = 0
        for example in batch:
            answer = ask(instruction, tg.node(example["input"], name="words"))
            if answer.data == example["target"]:
                correct += 1
                opt.backward(answer, "Correct.")
            else:
                opt.backward(answer, f"Wrong. Expected {example['target']!r}, got {answer.data!r}.")
        print(f"step {step}: {correct}/{len(batch)} right with instruction={instruction.data!r}")
        if correct == len(batch):
            continue
        report = opt.step()
        print(f"   model: {report.reasoning}")
    after = accuracy(ask, instruction, val)
    print(f"final instruction: {instruction.data!r}")
    return before, after


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a litellm model name, or local (default: $TRACEGRAD_MODEL, the embedded model, stand-ins)"
    )
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args(argv)
    before, after = run(*choose_models(args.model), steps=args.steps)
    print(f"validation accuracy: {before:.0%} -> {after:.0%}")


if __name__ == "__main__":
    try:
        main()
    except tg.TracegradError as exc:  # a failed model call, a budget reached ...
        raise SystemExit(f"stopped: {exc}") from None
