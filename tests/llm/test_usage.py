"""Token and cost accounting, budgets, and cost projection."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import textwrap
import threading

import pytest

from tracegrad.llm import (
    LLM,
    Budget,
    BudgetExceeded,
    LiteLLMTransport,
    LLMConfigError,
    LLMError,
    ReplayTransport,
    ScriptedTransport,
    Usage,
    UsageSnapshot,
)
from tracegrad.llm.tokens import tokens_for_chars
from tracegrad.llm.usage import track_usage


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


def test_a_call_reports_what_it_spent_in_the_ledger_type(make_llm):
    llm, _ = make_llm([reply(10, 5, 0.01)], temperature=0)
    done = llm.complete("a")
    assert done.usage == UsageSnapshot(calls=1, prompt_tokens=10, completion_tokens=5, cost_usd=0.01)
    assert llm.usage.snapshot() == done.usage
    hit = llm.complete("a")
    assert hit.cached and hit.usage == UsageSnapshot(cache_hits=1) and hit.cost_usd == 0.0
    assert done.usage + hit.usage == llm.usage.snapshot()


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


# -- spend made elsewhere, spend per block -------------------------------------------------------


def test_add_books_spend_made_elsewhere_and_it_counts_towards_the_budget(make_llm):
    llm, t = make_llm([reply()] * 3, budget=Budget(max_calls=3))
    llm.complete("a")
    llm.usage.add(UsageSnapshot(calls=2, prompt_tokens=4, completion_tokens=1, cost_usd=0.5, cache_hits=1))
    snap = llm.usage.snapshot()
    assert (snap.calls, snap.cache_hits, snap.total_tokens, snap.cost_usd) == (3, 1, 20, pytest.approx(0.51))
    with pytest.raises(BudgetExceeded):
        llm.complete("b")
    assert len(t.requests) == 1


def test_track_usage_tells_apart_blocks_that_run_at_once_on_one_ledger(make_llm):
    llm, _ = make_llm(lambda req: reply(prompt=len(req.messages[-1]["content"]), completion=1))
    barrier = threading.Barrier(2, timeout=60)  # a failing block must not leave the other waiting
    spent = {}

    def block(prompt, times):
        with track_usage() as tracker:
            for _ in range(times):
                barrier.wait()  # the two blocks' calls interleave
                llm.complete(prompt)
        spent[prompt] = tracker.spent()

    threads = [threading.Thread(target=block, args=a) for a in [("x", 2), ("yyy", 2)]]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert spent["x"] == {llm.usage: UsageSnapshot(calls=2, prompt_tokens=2, completion_tokens=2, cost_usd=0.02)}
    assert spent["yyy"] == {llm.usage: UsageSnapshot(calls=2, prompt_tokens=6, completion_tokens=2, cost_usd=0.02)}


def test_calls_outside_every_block_are_reported_once_as_untracked(make_llm):
    llm, _ = make_llm([reply(), reply(), reply()], temperature=0)
    llm.complete("a")
    with track_usage() as tracker:
        llm.complete("b")
        llm.complete("a")  # a cache hit
        worker = threading.Thread(target=llm.complete, args=("c",))  # without the block's context
        worker.start()
        worker.join()
    assert tracker.total() == UsageSnapshot(calls=1, cache_hits=1, prompt_tokens=10, completion_tokens=5, cost_usd=0.01)
    untracked = llm.usage.take_untracked()
    assert untracked == UsageSnapshot(calls=2, prompt_tokens=20, completion_tokens=10, cost_usd=0.02)
    assert llm.usage.take_untracked() == UsageSnapshot()
    assert tracker.total() + untracked == llm.usage.snapshot()


def test_blocks_nest_and_asyncio_tasks_count_in_the_block_that_made_them(make_llm):
    llm, _ = make_llm(lambda req: reply())
    other = Usage()

    async def main():
        with track_usage() as outer:
            with track_usage() as inner:
                await asyncio.gather(llm.acomplete("a"), llm.acomplete("b"))
            other.add(UsageSnapshot(calls=1))
        return outer, inner

    outer, inner = asyncio.run(main())
    assert inner.spent() == {llm.usage: llm.usage.snapshot()} and inner.total().calls == 2
    assert outer.spent() == {llm.usage: llm.usage.snapshot(), other: UsageSnapshot(calls=1)}


def test_a_pickled_ledger_keeps_totals_and_budget_and_reports_only_its_own_spend():
    usage = Usage(Budget(max_calls=2))
    usage.add(UsageSnapshot(calls=1, prompt_tokens=3))
    copy = pickle.loads(pickle.dumps(usage))
    assert copy.snapshot() == usage.snapshot() and copy.budget == usage.budget
    assert copy.take_untracked() == UsageSnapshot()
    copy.begin_call()
    copy.end_call(UsageSnapshot(calls=1))
    with pytest.raises(BudgetExceeded):
        copy.begin_call()
    assert copy.take_untracked() == UsageSnapshot(calls=1) and usage.calls == 1


# -- projection (counted and priced by the transport) -------------------------------------------


def test_estimate_cost_of_a_known_model_uses_the_litellm_tokenizer_and_price_map():
    llm = LLM("gpt-4o-mini", transport=LiteLLMTransport(), max_tokens=200)  # nothing is sent
    one = llm.estimate_cost("Summarize the plot of Hamlet in one sentence.")
    assert one.prompt_tokens > 5 and not one.approximate and one.completion_tokens == 200
    assert one.cost_usd is not None and 0 < one.cost_usd < 0.01
    many = llm.estimate_cost("Summarize the plot of Hamlet in one sentence.", 200, calls=100)
    assert many.cost_usd == pytest.approx(one.cost_usd * 100) and "100 call(s)" in str(many)


def test_estimate_cost_of_an_unpriced_local_model_is_unknown_not_an_error():
    llm = LLM("openai/my-local-model", api_base="http://127.0.0.1:9/v1", transport=LiteLLMTransport())
    est = llm.estimate_cost([{"role": "user", "content": "hello"}], 50)
    assert est.cost_usd is None and est.prompt_tokens > 0 and "unknown price" in str(est)


def test_a_scripted_transport_estimates_tokens_and_knows_no_price():
    llm = LLM("gpt-4o-mini", transport=ScriptedTransport([]))
    est = llm.estimate_cost("x" * 300, 50)
    assert (est.prompt_tokens, est.approximate, est.cost_usd) == (tokens_for_chars(300), True, None)
    assert llm.count_tokens("x" * 30) == (10, True)


def test_counting_and_pricing_go_through_the_transport():
    class Priced(ScriptedTransport):
        def count_tokens(self, model, content):
            return 7, False

        def price(self, model, prompt_tokens, completion_tokens):
            return 0.001 * prompt_tokens + 0.002 * completion_tokens

    est = LLM("m", transport=Priced([])).estimate_cost("anything", 10, calls=2)
    assert (est.prompt_tokens, est.approximate) == (7, False)
    assert est.cost_usd == pytest.approx(2 * (0.007 + 0.02))


def test_estimating_on_a_scripted_transport_never_imports_litellm():
    code = textwrap.dedent(
        """
        import sys
        from tracegrad.llm import LLM, ScriptedTransport
        llm = LLM("gpt-4o-mini", transport=ScriptedTransport([]))
        print(llm.estimate_cost("hello there", 20), llm.count_tokens("hello"))
        sys.exit("litellm" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_replay_transport_counts_with_the_transport_it_records_from(tmp_path):
    replay = ReplayTransport(tmp_path / "r.jsonl", record_from=LiteLLMTransport())
    assert replay.count_tokens("gpt-4o-mini", "hello world")[1] is False
    assert replay.price("gpt-4o-mini", 1000, 0) > 0
    alone = ReplayTransport(tmp_path / "r.jsonl")
    assert alone.count_tokens("gpt-4o-mini", "hello world")[1] is True and alone.price("gpt-4o-mini", 1, 1) is None
