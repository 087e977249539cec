"""Shared pieces of the training tests (a small workflow, a scripted optimizer), imported by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import tracegrad as tg
from tracegrad.optimizers.base import Optimizer


@tg.bundle
def decorate(text, suffix):
    """Append the suffix to the text."""
    return text + suffix


class Suffixer(tg.Module):
    """The workflow of most tests: ``input + suffix``; the suffix is trained."""

    def __init__(self, suffix: str = "") -> None:
        self.suffix = tg.parameter(suffix, tg.Text(max_length=20), description="appended to every input")
        self.calls = 0

    def forward(self, text):
        self.calls += 1
        return decorate(text, self.suffix)


def suffix_data(suffix: str = "!", n: int = 6) -> list[tuple[str, str]]:
    return [(w, w + suffix) for w in ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op"][:n]]


Suggest = Callable[["ScriptedOptimizer", int, list[str]], dict[str, Any]]


class ScriptedOptimizer(Optimizer):
    """A deterministic optimizer for tests.

    ``suggest(optimizer, sample, feedback_texts) -> {name: value}`` gives the proposal;
    the state is the list of committed proposals' values (``memory``), so tests can see
    that a rejected proposal leaves it alone. ``seen`` records, per ``propose`` call,
    the feedback it was given (instrumentation, not state). Each proposal reports one
    call of 10 + 5 tokens costing $0.001.
    """

    def __init__(self, parameters: Any, suggest: Suggest) -> None:
        super().__init__(parameters)
        self.suggest = suggest
        self.memory: list[dict[str, Any]] = []
        self.seen: list[list[str]] = []

    def feedback_texts(self) -> list[str]:
        entries: dict[int, Any] = {}
        for p in self.parameters:
            for f in p.feedback:
                entries.setdefault(id(f), f)
        return [str(f.value) for f in entries.values()]

    def propose(self, *, sample: int = 0):
        texts = self.feedback_texts()
        if not texts:
            return self._proposal({}, self._report("no_feedback"))
        self.seen.append(texts)
        values = self.suggest(self, sample, texts)
        report = self._report(
            "updated", calls=1, prompt_tokens=10, completion_tokens=5, cost_usd=0.001, reply=json.dumps(values)
        )
        report.messages = [{"role": "user", "content": "\n".join(texts)}]
        return self._proposal(values, report, state=[*self.memory, values])

    def _take_state(self, state: Any) -> None:
        self.memory = list(state)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "memory": self.memory}

    def load_state_dict(self, state: Any) -> None:
        count = self._checked_step_count(state)
        self.memory = [dict(m) for m in state["memory"]]
        self.step_count = count


def always(values: dict[str, Any]) -> Suggest:
    return lambda opt, sample, texts: dict(values)


def state_json(opt: Optimizer) -> str:
    return json.dumps(opt.state_dict(), sort_keys=True)


def values_of(module: tg.Module) -> dict[str, Any]:
    return module.state_dict()
