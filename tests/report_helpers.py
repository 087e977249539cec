"""A real training run for the report and command tests: a scripted optimizer model, a prompt and a code parameter.

``make_run(path)`` trains ``Agent`` (a prompt and the code of ``finish``) with OptoPrime
on words to shout; the optimizer's model is scripted: it fixes the prompt, then proposes
broken code (rejected: the score drops), then the right code. Its replies carry markup,
which the report must show as text. The run ends by saving the trace of one example,
with feedback, as ``trace.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import tracegrad as tg

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"

WORDS = ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op", "qr", "st"]

PROMPT = "Repeat the word.\nKeep it short.\nShout it."
GOOD_CODE = 'def finish(text):\n    """Finish the text."""\n    return text + "!"\n'
BAD_CODE = 'def finish(text):\n    """Finish the text."""\n    return ""\n'

REPLIES = [
    {"reasoning": f"The outputs are not in uppercase; ask for shouting. {HOSTILE}", "suggestion": {"prompt": PROMPT}},
    {"reasoning": "Clear the text, then start again.", "suggestion": {"finish.code": BAD_CODE}},
    {"reasoning": "Every output lacks the final '!'; append it.", "suggestion": {"finish.code": GOOD_CODE}},
]


@tg.bundle()
def ask(prompt, word):
    """The task model's stand-in: repeats the word, in uppercase when the prompt says to shout."""
    return word.upper() if "shout" in prompt.lower() else word


def make_agent() -> tg.Module:
    @tg.bundle(trainable=True)
    def finish(text):
        """Finish the text."""
        return text

    class Agent(tg.Module):
        def __init__(self) -> None:
            self.prompt = tg.parameter("Repeat the word.\nKeep it short.", tg.Text(), description="the instruction")
            self.finish = finish

        def forward(self, word):
            return self.finish(ask(self.prompt, word))

    return Agent()


def guide(example, output):
    """Half a point for uppercase, half for the final '!'."""
    upper, bang = output.rstrip("!") == example.input.upper(), output.endswith("!")
    missing = [what for what, ok in (("in uppercase", upper), ("ending with '!'", bang)) if not ok]
    return (upper + bang) / 2, "Correct." if not missing else f"Got {output!r}; it should be " + ", ".join(missing)


def make_run(path: Path) -> Path:
    """Train into ``path`` and save the trace of one example; returns ``path``."""
    replies = iter(REPLIES)

    def answer(request):
        reply = next(replies, {"reasoning": "Nothing to change.", "suggestion": {}})
        return {"text": json.dumps(reply), "prompt_tokens": 400, "completion_tokens": 60, "cost_usd": 0.0025}

    llm = tg.LLM("scripted/optimizer", transport=tg.ScriptedTransport(answer), cache=False)
    model = make_agent()
    opt = tg.OptoPrime(model, llm=llm)
    data = [(w, w.upper() + "!") for w in WORDS]
    tg.train(model, data[:8], guide, opt, validation=data[8:], batch_size=2, shuffle=False, quiet=True, run_dir=path)
    if not (path / "trace.json").exists():
        out = model(WORDS[0])
        out.backward("Correct.")
        tg.save_trace(out, path / "trace.json")
    return path
