"""Token and cost accounting, budgets, and cost projection."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tracegrad.llm import LLM, Budget, BudgetExceeded, LLMConfigError, LLMError, ScriptedTransport, Usage


def reply(prompt=10, completion=5, cost=0.01, text="ok"):
    return {"text": text, "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost}


def test_usage_accumulates_per_run(make_llm):
    llm, _ = make_llm([reply(10, 5, 0.01), reply(20, 1, 0.02)])
    llm.complete("a")
    llm.complete("b")
    u = llm.usage
    assert (u.calls, u.prompt_tokens, u.completion_tokens, u.total_tokens) == (2, 30, 6, 36)
    assert u.cost_usd == pytest.approx(0.03) and u.cache_hits == 0
    assert "2 calls" in repr(u)


def test_snapshots_give_the_spend_of_a_step(make_llm):
    llm, _ = make_llm([reply(), reply(), reply()])
    llm.complete("a")
    before = llm.usage.snapshot()
    llm.complete("b")
    llm.complete("c")
    step = llm.usage.snapshot() - before
    assert (step.calls, step.total_tokens) == (2, 30) and step.cost_usd == pytest.approx(0.02)
    assert "2 calls" in step.summary()


def test_unknown_cost_is_counted_apart_and_never_crashes(make_llm):
    llm, _ = make_llm([reply(cost=None), reply(cost=0.5)])
    assert llm.complete("a").cost_usd is None
    llm.complete("b")
    snap = llm.usage.snapshot()
    assert snap.cost_usd == 0.5 and snap.calls_without_cost == 1
    assert "unknown price" in snap.summary()


@pytest.mark.parametrize(
    ("budget", "name", "limit"),
    [
        (Budget(max_calls=2), "max_calls", "2"),
        (Budget(max_tokens=30), "max_tokens", "30"),
        (Budget(max_cost_usd=0.02), "max_cost_usd", "0.02"),
    ],
)
def test_budgets_stop_the_run_before_the_call(make_llm, budget, name, limit):
    llm, t = make_llm([reply(10, 5, 0.01)] * 5, budget=budget)
    llm.complete("a")
    llm.complete("b")
    with pytest.raises(BudgetExceeded) as err:
        llm.complete("c")
    assert len(t.requests) == 2  # the refused call was not made
    e = err.value
    assert isinstance(e, LLMError) and e.budget == name and e.calls == 2
    assert name in str(e) and limit in str(e)
    assert e.spent == {"max_calls": 2, "max_tokens": 30, "max_cost_usd": pytest.approx(0.02)}[name]


def test_cost_budget_message_shows_dollars(make_llm):
    llm, _ = make_llm([reply(cost=1.5)] * 2, budget=Budget(max_cost_usd=1.0))
    llm.complete("a")
    with pytest.raises(BudgetExceeded, match=r"\$1\.5000 spent of \$1\.0000"):
        llm.complete("b")


def test_cache_hits_are_free(make_llm):
    llm, _ = make_llm([reply()], temperature=0, budget=Budget(max_calls=1, max_cost_usd=0.01))
    llm.complete("a")
    for _ in range(3):
        assert llm.complete("a").cached
    assert (llm.usage.calls, llm.usage.cache_hits) == (1, 3)
    with pytest.raises(BudgetExceeded):
        llm.complete("new prompt")


def test_failed_calls_do_not_use_the_call_budget(make_llm):
    class AuthenticationError(Exception):
        pass

    llm, _ = make_llm([AuthenticationError("x"), reply()], budget=Budget(max_calls=1))
    with pytest.raises(LLMError):
        llm.complete("a")
    assert llm.complete("a").text == "ok"
    assert llm.usage.snapshot().failed_calls == 1


def test_a_shared_ledger_budgets_several_clients(retry):
    usage = Usage(Budget(max_calls=3))
    a = LLM("m/a", transport=ScriptedTransport([reply()] * 5), usage=usage, retry=retry)
    b = LLM("m/b", transport=ScriptedTransport([reply()] * 5), usage=usage, retry=retry)
    a.complete("1")
    b.complete("2")
    a.complete("3")
    with pytest.raises(BudgetExceeded):
        b.complete("4")
    assert usage.calls == 3


def test_budget_and_shared_usage_together_is_ambiguous():
    with pytest.raises(LLMConfigError):
        LLM("m", transport=ScriptedTransport([]), usage=Usage(), budget=Budget(max_calls=1))


def test_negative_budget_is_refused():
    with pytest.raises(LLMConfigError):
        Budget(max_calls=-1)


def test_call_budget_holds_under_threads(make_llm):
    llm, t = make_llm(lambda req: reply(), budget=Budget(max_calls=37))
    refused = []

    def work():
        for _ in range(10):
            try:
                llm.complete("x")
            except BudgetExceeded:
                refused.append(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert llm.usage.calls == 37 and len(t.requests) == 37 and len(refused) == 80 - 37


def test_call_budget_holds_under_asyncio(make_llm):
    llm, t = make_llm(lambda req: reply(), budget=Budget(max_calls=5))

    async def main():
        return await asyncio.gather(*(llm.acomplete(str(i)) for i in range(9)), return_exceptions=True)

    results = asyncio.run(main())
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 4 and len(t.requests) == 5


# -- projection (uses litellm's tokenizer and local price map, offline) -----------------------------


def test_estimate_cost_of_a_known_model():
    llm = LLM("gpt-4o-mini", transport=ScriptedTransport([]), max_tokens=200)
    one = llm.estimate_cost("Summarize the plot of Hamlet in one sentence.")
    assert one.prompt_tokens > 5 and not one.approximate and one.completion_tokens == 200
    assert one.cost_usd is not None and 0 < one.cost_usd < 0.01
    many = llm.estimate_cost("Summarize the plot of Hamlet in one sentence.", 200, calls=100)
    assert many.cost_usd == pytest.approx(one.cost_usd * 100) and "100 call(s)" in str(many)


def test_estimate_cost_of_an_unpriced_local_model_is_unknown_not_an_error():
    llm = LLM("openai/my-local-model", api_base="http://127.0.0.1:9/v1", transport=ScriptedTransport([]))
    est = llm.estimate_cost([{"role": "user", "content": "hello"}], 50)
    assert est.cost_usd is None and est.prompt_tokens > 0 and "unknown price" in str(est)
