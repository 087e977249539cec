"""evaluate: scores, spend from the ledgers, and the evaluation cache with budgets."""

from __future__ import annotations

import pytest

import tracegrad as tg
from tracegrad.train import EvaluationCache, ExactMatch, evaluate


def reply(request):
    """The scripted task model: the prompt and the question, joined (10 + 2 tokens)."""
    system, user = request.messages[0]["content"], request.messages[1]["content"]
    return {"text": f"{user}{system}", "prompt_tokens": 10, "completion_tokens": 2, "cost_usd": 0.01}


class Asker(tg.Module):
    """A pipeline that calls a model once per example."""

    def __init__(self, llm):
        self.llm = llm
        self.prompt = tg.parameter("?", "text", description="the system prompt")

    def forward(self, question):
        return ask(self.llm, self.prompt, question)


@tg.bundle
def ask(llm, prompt, question):
    """Ask the model the question with the prompt."""
    messages = [{"role": "system", "content": prompt}, {"role": "user", "content": question}]
    return llm.complete(messages).text


DATA = [("a", "a!"), ("b", "b!"), ("c", "c?")]


def make(budget=None):
    transport = tg.ScriptedTransport(reply)
    llm = tg.LLM("scripted/task", transport=transport, cache=False, budget=budget)
    return Asker(llm), transport


def test_mean_score_and_spend_of_the_pipeline_ledger():
    model, transport = make()
    ev = evaluate(model, DATA, ExactMatch(), usage=model.llm.usage, progress=False)
    assert ev.per_example == [0.0, 0.0, 1.0] and ev.score == pytest.approx(1 / 3)
    assert (ev.calls, ev.prompt_tokens, ev.completion_tokens) == (3, 30, 6)
    assert ev.cost_usd == pytest.approx(0.03)
    assert [r.output for r in ev.results] == ["a?", "b?", "c?"]
    assert ev.cache_hits == 0 and len(transport.requests) == 3


def test_a_cache_hit_runs_nothing_and_costs_nothing():
    model, transport = make()
    cache = EvaluationCache()
    first = evaluate(model, DATA, ExactMatch(), cache=cache, usage=model.llm.usage, progress=False)
    again = evaluate(model, DATA, ExactMatch(), cache=cache, usage=model.llm.usage, progress=False)
    assert len(transport.requests) == 3  # the second evaluation made no call
    assert again.cache_hits == 3 and again.calls == 0 and again.cost_usd == 0.0
    assert again.per_example == first.per_example
    assert [r.feedback for r in again.results] == [r.feedback for r in first.results]
    assert all(r.cached for r in again.results)
    # other parameter values are other entries
    model.prompt.data = "!"
    changed = evaluate(model, DATA, ExactMatch(), cache=cache, usage=model.llm.usage, progress=False)
    assert changed.cache_hits == 0 and changed.per_example == [1.0, 1.0, 0.0] and len(transport.requests) == 6
    # and another guide is another entry too
    loose = evaluate(model, DATA, ExactMatch(ignore_case=True), cache=cache, progress=False)
    assert loose.cache_hits == 0


def test_budgets_count_only_calls_really_made():
    model, _ = make(tg.Budget(max_calls=3))
    cache = EvaluationCache()
    evaluate(model, DATA, ExactMatch(), cache=cache, progress=False)
    for _ in range(3):  # a spent budget, yet re-evaluating the same candidate is free
        assert evaluate(model, DATA, ExactMatch(), cache=cache, progress=False).cache_hits == 3
    assert model.llm.usage.calls == 3
    model.prompt.data = "!"
    with pytest.raises(tg.BudgetExceeded):
        evaluate(model, DATA, ExactMatch(), cache=cache, progress=False)


def test_trace_runs_every_example_and_keeps_connected_nodes():
    model, transport = make()
    cache = EvaluationCache()
    evaluate(model, DATA, ExactMatch(), cache=cache, progress=False)
    traced = evaluate(model, DATA, ExactMatch(), cache=cache, trace=True, progress=False)
    assert traced.cache_hits == 0 and len(transport.requests) == 6
    out = traced.results[0].node
    out.backward("more!")
    assert model.prompt.feedback[0].value == "more!"
    untraced = evaluate(model, DATA[:1], ExactMatch(), progress=False)
    assert untraced.results[0].node.parents == ()


def test_the_cache_needs_to_know_the_parameters():
    with pytest.raises(ValueError, match="parameters"):
        evaluate(lambda x: x, DATA, ExactMatch(), cache=EvaluationCache(), progress=False)
    p = tg.parameter("!", "text", name="p")
    ev = evaluate(lambda x: x + p.value, DATA, ExactMatch(), cache=EvaluationCache(), parameters=[p], progress=False)
    assert ev.per_example == [1.0, 1.0, 0.0]


def test_a_progress_bar_can_be_shown(capsys):
    model, _ = make()
    evaluate(model, DATA, ExactMatch(), progress=True)
    assert "evaluate" in capsys.readouterr().err
