"""A training run for the kill-and-resume test: ``python kill_resume_job.py RUN_DIR``.

Everything is deterministic and offline. The task model follows its system prompt
literally; the optimizer's model (for OptoPrime) reads the current prompt and the
feedback from the request and suggests one more instruction. Both answer from the
request's content alone, never from the order of calls, so a resumed run asks and
hears exactly what an uninterrupted one would. Each reply takes a few milliseconds, so
that a kill lands at many different points of a run.

The run resumes from RUN_DIR when it holds a checkpoint, and writes RUN_DIR/result.json
(history, parameters, optimizer state) when it finishes.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import tracegrad as tg
from tracegrad._io import atomic_write_json
from tracegrad.train import BestOfN, train

WORDS = [
    "apple",
    "brick",
    "cloud",
    "delta",
    "ember",
    "flint",
    "grove",
    "haze",
    "iris",
    "jolt",
    "kite",
    "lumen",
    "mango",
    "nova",
    "opal",
    "pique",
]
INSTRUCTIONS = [
    "Reverse the word.",
    "Use lowercase.",
    "Write it in uppercase.",
    "End with an exclamation mark.",
    "Start with a dash.",
]
DELAY_S = 0.02


def target(word: str) -> str:
    return word[::-1].upper() + "!"


def task_reply(request) -> dict:
    """Follows the system prompt literally."""
    time.sleep(DELAY_S)
    prompt, word = request.messages[0]["content"], request.messages[1]["content"]
    out = word
    if "Reverse" in prompt:
        out = out[::-1]
    if "lowercase" in prompt:
        out = out.lower()
    elif "uppercase" in prompt:
        out = out.upper()
    if "exclamation" in prompt:
        out += "!"
    if "dash" in prompt:
        out = "-" + out
    return {"text": out, "prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": 2, "cost_usd": 1e-5}


def optimizer_reply(request) -> dict:
    """Adds an instruction the prompt lacks or drops one it has, as a digest of the request says."""
    time.sleep(DELAY_S)
    content = request.messages[-1]["content"]
    match = re.search(r"^prompt=(.*?)(?:  #.*)?$", content, re.M)
    current = ast.literal_eval(match.group(1)) if match else ""
    have = [i for i in INSTRUCTIONS if i in current]
    missing = [i for i in INSTRUCTIONS if i not in current]
    digest = int(hashlib.sha256(f"{content}|{request.sample_index}".encode()).hexdigest(), 16)
    if have and (digest % 2 == 0 or not missing):
        new = current.replace(" " + have[digest // 2 % len(have)], "")
    else:
        new = f"{current} {missing[digest // 2 % len(missing)]}"
    suggestion = {"prompt": new}
    text = json.dumps({"reasoning": "one more instruction", "answer": None, "suggestion": suggestion})
    return {"text": text, "prompt_tokens": len(content) // 4, "completion_tokens": 20, "cost_usd": 1e-4}


def guide(example, output: str) -> tuple[float, str]:
    """Partial credit: one quarter for each property of the expected answer."""
    core = output.strip("-!")
    checks = {
        "reversed": core.lower() == example.input[::-1].lower(),
        "in uppercase": core.isupper(),
        "ending with '!'": output.endswith("!"),
        "without a leading dash": not output.startswith("-"),
    }
    missing = [name for name, ok in checks.items() if not ok]
    score = 1.0 - len(missing) / len(checks)
    return score, "Correct." if not missing else f"Got {output!r}; it should be " + ", ".join(missing) + "."


USAGE = tg.Usage()
TASK = tg.LLM("scripted/task", transport=tg.ScriptedTransport(task_reply), cache=False, usage=USAGE)


@tg.bundle
def ask(prompt, word):
    """Ask the task model: the prompt is its system message, the word the user message."""
    return TASK.complete([{"role": "system", "content": prompt}, {"role": "user", "content": word}]).text


class Pipeline(tg.Module):
    def __init__(self) -> None:
        self.prompt = tg.parameter("Repeat the word.", tg.Text(max_length=300), description="the task model's prompt")

    def forward(self, word):
        return ask(self.prompt, word)


def main(run_dir: str) -> None:
    model = Pipeline()
    opt_llm = tg.LLM("scripted/optimizer", transport=tg.ScriptedTransport(optimizer_reply), cache=False)
    opt = tg.OptoPrime(model, llm=opt_llm, memory_size=2)
    data = [(w, target(w)) for w in WORDS]
    history = train(
        model,
        data[:12],
        guide,
        opt,
        validation=data[12:],
        batch_size=2,
        epochs=3,
        search=BestOfN(2),
        usage=USAGE,
        concurrency=4,  # the prompt lists a batch's calls in the same order whatever the threads did
        run_dir=run_dir,
        resume=True,
        quiet=True,
    )
    atomic_write_json(
        os.path.join(run_dir, "result.json"),
        {"history": history.to_json(), "parameters": model.state_dict(), "optimizer": opt.state_dict()},
    )


if __name__ == "__main__":
    main(sys.argv[1])
