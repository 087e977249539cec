"""Train a prompt and a piece of code together with ``tg.train`` (BIG-bench object_counting).

The pipeline asks a task model "I have a piano, two violins and an apple. How many
musical instruments do I have?" under a system prompt, then a trainable function,
``parse_answer``, turns the model's reply into the answer. Both are parameters: the
prompt starts as "Answer the question." and the parser just returns the reply. Each
training step runs a minibatch, gives OptoPrime one feedback listing every example's
mistake, and keeps the proposal only if the validation accuracy does not drop. The
validation accuracy is printed after every epoch.

    python examples/train_prompt.py                  # the embedded model if installed, else offline stand-ins
    python examples/train_prompt.py --model openai/gpt-4o-mini   # or set TRACEGRAD_MODEL
    python examples/train_prompt.py --run-dir runs/count         # checkpoints; run again to resume
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import tracegrad as tg
import tracegrad.train
from tracegrad.train import ExactMatch, History, split

DATA = Path(__file__).resolve().parent / "data" / "object_counting_sample.json"
TaskModel = Callable[[str, str], str]


def load() -> tuple[list, list]:
    """Twelve training and twelve validation examples (a fixed, seeded split)."""
    examples = [(e["input"], e["target"]) for e in json.loads(DATA.read_text())["examples"]]
    return split(examples, 12, seed=0)


class Counter(tg.Module):
    """Ask the task model, then parse its reply; the prompt and the parser are trained."""

    def __init__(self, task_model: TaskModel) -> None:
        self.ask = make_ask(task_model)
        self.instruction = tg.parameter(
            "Answer the question.", tg.Text(max_length=800), description="the task model's system prompt"
        )

    def forward(self, question):
        return self.parse_answer(self.ask(self.instruction, question))

    @tg.bundle(trainable=True)
    def parse_answer(self, reply):
        """Turn the task model's reply into the final answer (a number in digits)."""
        return reply.strip()


def make_ask(task_model: TaskModel):
    @tg.bundle
    def ask(instruction, question):
        """Ask the task model: `instruction` is its system prompt, `question` the user message; returns its reply."""
        return task_model(instruction, question)

    return ask


# -- stand-ins for models, so the example runs offline -----------------------------------------

KINDS = {
    "fruits": "apple banana blackberry grape nectarine orange peach plum raspberry strawberry",
    "vegetables": "cabbage carrot cauliflower garlic broccoli lettuce onion potato celery yam",
    "animals": "bear cat chicken cow dog donkey duck fish frog goat mouse pig rabbit snail snake",
    "musical instruments": "accordion clarinet drum flute piano trombone trumpet violin",
    "objects": "bed car chair couch fridge lamp microwave oven stove table toaster",
}
NUMBERS = {"a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}


def kind_of(thing: str) -> str | None:
    """The kind of a listed thing ("two peaches" -> "fruits"), from the words above."""
    words = re.findall(r"[a-z]+", thing.lower())
    forms = {"mouse" if w == "mice" else f for w in words for f in (w, w[:-1], w[:-2], w[:-3] + "y")}
    for kind, names in KINDS.items():
        if forms & set(names.split()):
            return kind
    return None


def stand_in_task_model(instruction: str, question: str) -> str:
    """NOT a language model: counts what the question lists, chattily, and counts only the
    things of the asked kind when the prompt says so."""
    have, asked = re.match(r"I have (.*)\. How many (.*) do I have\?", question).groups()
    things = [t for t in re.split(r", and |, | and ", have) if t]
    only = "only" in instruction.lower() and any(w in instruction.lower() for w in ("kind", "categor", "asked"))
    counted = [(t, NUMBERS.get(t.split()[0], 1)) for t in things if not only or kind_of(t) == asked]
    steps = ", ".join(f"{t} ({n})" for t, n in counted)
    return f"Let me count: {steps}. That makes {sum(n for _, n in counted)} in total."


NEW_PARSER = '''def parse_answer(self, reply):
    """Turn the task model's reply into the final answer (a number in digits)."""
    import re

    numbers = re.findall(r"\\d+", reply)
    return numbers[-1] if numbers else reply.strip()
'''
ONLY_THE_KIND = " Count only the things of the kind the question asks about; ignore everything else."


def stand_in_optimizer(request) -> str:
    """NOT a language model: reads the mistakes in the feedback and fixes what they point to,
    the parser first (answers that are not numbers), then the prompt (counts too high)."""
    prompt = request.messages[-1]["content"]
    instruction = ast.literal_eval(re.search(r"^instruction=(.*?)(?:  #.*)?$", prompt, re.M).group(1))
    mistakes = re.findall(r"expected '\w+' or '(\d+)', got (['\"].*['\"])\.$", prompt.split("#Feedback")[-1], re.M)
    answers = [(int(want), ast.literal_eval(got)) for want, got in mistakes]
    if any(not got.isdigit() for _, got in answers) and "re.findall" not in prompt:
        why, suggestion = (
            "the answers are whole sentences; the parser must return the number",
            {"parse_answer.code": NEW_PARSER},
        )
    elif any(got.isdigit() and int(got) > want for want, got in answers) and "only" not in instruction:
        why = "the counts are too high: things of other kinds were counted"
        suggestion = {"instruction": instruction + ONLY_THE_KIND}
    else:
        why, suggestion = "I cannot tell what is wrong.", {}
    return json.dumps({"reasoning": f"Judging by the feedback, {why}.", "answer": None, "suggestion": suggestion})


def choose_models(model: str | None) -> tuple[tg.LLM, TaskModel, tg.Usage]:
    """(optimizer model, task model, the task model's ledger): the configured model, else stand-ins."""
    model = tg.configured_model(model)  # the argument, $TRACEGRAD_MODEL or the embedded model
    usage = tg.Usage()
    if model:
        task_llm = tg.LLM(model, temperature=0, usage=usage)

        def task_model(instruction: str, question: str) -> str:
            messages = [{"role": "system", "content": instruction}, {"role": "user", "content": question}]
            return task_llm.complete(messages).text

        return tg.LLM(model), task_model, usage
    print("(no model configured: using offline stand-ins; pass --model NAME for a real one)")
    optimizer = tg.LLM("stand-in/train-prompt", transport=tg.ScriptedTransport(stand_in_optimizer), cache=False)
    return optimizer, stand_in_task_model, usage


def run(
    llm: tg.LLM, task_model: TaskModel, usage: tg.Usage, *, epochs: int = 2, run_dir: str | None = None
) -> tuple[History, Counter]:
    """Train the prompt and the parser; returns the history and the trained pipeline."""
    train, val = load()
    pipeline = Counter(task_model)
    opt = tg.OptoPrime(pipeline, llm=llm)

    last = pipeline.state_dict()

    def show_step(record: tracegrad.train.StepRecord) -> None:
        nonlocal last
        now = pipeline.state_dict()
        if record.accepted:
            changed = ", ".join(name for name in now if now[name] != last[name])
            print(f"  step {record.step}: changed {changed}; validation accuracy {record.validation_score:.0%}")
        last = now

    def show_epoch(epoch: int, history: History) -> None:
        print(f"epoch {epoch + 1}: validation accuracy {history.best_score:.0%}")

    history = tg.train(
        pipeline,
        train,
        ExactMatch(),
        opt,
        validation=val,
        batch_size=4,
        epochs=epochs,
        usage=usage,
        run_dir=run_dir,
        resume=run_dir is not None,
        quiet=True,
        on_step=show_step,
        on_epoch=show_epoch,
    )
    return history, pipeline


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a litellm model name, or local (default: $TRACEGRAD_MODEL, the embedded model, stand-ins)"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--run-dir", help="keep checkpoints and log.jsonl here; run again to resume")
    args = parser.parse_args(argv)
    history, pipeline = run(*choose_models(args.model), epochs=args.epochs, run_dir=args.run_dir)
    print(f"validation accuracy: {history.initial_score:.0%} -> {history.best_score:.0%} ({history.stop_reason})")
    print(f"instruction: {pipeline.instruction.value!r}")
    print(f"parse_answer:\n{pipeline.parse_answer.parameter.value}")
    print(f"cost: {history.spend.summary()}")


if __name__ == "__main__":
    try:
        main()
    except tg.TracegradError as exc:  # a failed model call, a budget reached ...
        raise SystemExit(f"stopped: {exc}") from None
