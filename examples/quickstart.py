"""Quick start: decorate a small pipeline, run it, give feedback, look at the trace.

Run with ``make demo`` (or ``python examples/quickstart.py``). Writes the picture of
the trace to ``out/quickstart_trace.svg`` when graphviz's ``dot`` is installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tracegrad as tg


class Answerer(tg.Module):
    """A toy question answerer: a prompt template, a formatting step and a length cap."""

    def __init__(self) -> None:
        self.template = tg.node("Answer briefly: {question}", trainable=True, description="the prompt template")
        self.max_words = tg.node(3, trainable=True, kind=tg.Integer(low=1, high=50), description="word cap")

    @tg.bundle()
    def ask(self, template: str, question: str) -> str:
        """Fill the prompt template with the question (stands in for a model call)."""
        return template.format(question=question)

    @tg.bundle(trainable=True)
    def shorten(self, text: str, max_words: int) -> str:
        """Keep at most max_words words of the text."""
        return " ".join(text.split()[:max_words])

    def forward(self, question: tg.Node) -> tg.Node:
        return self.shorten(self.ask(self.template, question), self.max_words)


def main() -> None:
    agent = Answerer()
    question = tg.node("What is the capital of France?", name="question")
    answer = agent(question)
    print(f"answer: {answer.data!r}")

    answer.backward("Too short: the answer lost the question. Keep at least 8 words.")

    print("\nparameters and the feedback that reached them:")
    for path, param in agent.named_parameters():
        print(f"  {path:<14} {param.kind.describe():<40} feedback={[f.value for f in param.feedback]}")

    optimizer = tg.OptoPrime(agent)  # the model is needed only when it is asked
    print("\nthe trace, as the optimizer will read it (the exact request, no model called):")
    request = optimizer.next_messages()[-1]["content"]
    print("  " + request.replace("\n", "\n  "))

    out = Path("out")
    agent.save(out / "quickstart.json")
    restored = Answerer().load(out / "quickstart.json")
    print(f"\nsaved and restored {len(restored.parameters())} parameters to {out / 'quickstart.json'}")

    if shutil.which("dot"):
        print(f"picture of the trace: {tg.render(answer, out / 'quickstart_trace.svg')}")
    else:
        print("install graphviz (the `dot` program) to draw the trace")


if __name__ == "__main__":
    main()
