"""A server that reports impossible usage cannot lower the totals or switch a budget off."""

from __future__ import annotations

import logging
import math

import pytest

from tracegrad.llm import LLM, Budget, BudgetExceeded, ScriptedTransport, TransportResponse
from tracegrad.llm.tokens import message_text, tokens_for_chars
from tracegrad.llm.usage import MAX_CALL_TOKENS, call_spend

PROMPT = "Summarize the quarterly report in two sentences."


def lying(prompt_tokens=-1_000_000, completion_tokens=5, cost_usd=0.0, text="a summary"):
    return TransportResponse(
        text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost_usd
    )


class PricedTransport(ScriptedTransport):
    """A scripted provider that knows its price: $1 per thousand tokens."""

    def price(self, model, prompt_tokens, completion_tokens):
        return (prompt_tokens + completion_tokens) / 1000


def test_negative_prompt_tokens_do_not_let_calls_through_a_token_budget(make_llm):
    llm, transport = make_llm(lambda req: lying(), budget=Budget(max_tokens=2000))
    prompt = PROMPT * 30
    with pytest.raises(BudgetExceeded) as refused:
        for _ in range(20):
            llm.complete(prompt)
    made = len(transport.requests)
    assert made < 20 and refused.value.budget == "max_tokens"
    per_call = tokens_for_chars(len(prompt)) + 5
    assert llm.usage.total_tokens == made * per_call >= 2000 > (made - 1) * per_call


@pytest.mark.parametrize(
    "reported",
    [-1, -1_000_000, MAX_CALL_TOKENS + 1, 10**400, 2.5, math.nan, math.inf, "12", True, None],
    ids=repr,
)
def test_an_impossible_count_is_estimated_from_the_text(make_llm, reported, caplog):
    llm, _ = make_llm([lying(prompt_tokens=reported, completion_tokens=reported, text="r" * 30)])
    with caplog.at_level(logging.WARNING, logger="tracegrad.llm"):
        done = llm.complete(PROMPT)
    request_chars = len(message_text(done.request.messages))
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (tokens_for_chars(request_chars), 10)
    assert llm.usage.total_tokens == done.usage.total_tokens > 0
    warned = [r.getMessage() for r in caplog.records if "impossible usage" in r.getMessage()]
    assert len(warned) == 1 and "prompt_tokens=" in warned[0]


def test_possible_counts_are_counted_as_reported(make_llm, caplog):
    llm, _ = make_llm([lying(prompt_tokens=0, completion_tokens=MAX_CALL_TOKENS), lying(prompt_tokens=7.0)])
    with caplog.at_level(logging.WARNING, logger="tracegrad.llm"):
        first, second = llm.complete(PROMPT), llm.complete(PROMPT)
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (0, MAX_CALL_TOKENS)
    assert second.usage.prompt_tokens == 7
    assert not [r for r in caplog.records if "impossible usage" in r.getMessage()]


@pytest.mark.parametrize("cost", [-5.0, math.nan, math.inf, 1e9, "0.01", True])
def test_an_impossible_price_is_priced_by_the_transport(retry, cost):
    transport = PricedTransport([lying(prompt_tokens=100, completion_tokens=50, cost_usd=cost)])
    llm = LLM("test/model", transport=transport, retry=retry, budget=Budget(max_cost_usd=0.1))
    done = llm.complete(PROMPT)
    assert done.cost_usd == pytest.approx(0.15)
    with pytest.raises(BudgetExceeded, match="max_cost_usd"):
        llm.complete(PROMPT)


def test_an_impossible_price_without_a_known_price_is_unknown_not_negative(make_llm):
    llm, _ = make_llm([lying(prompt_tokens=10, cost_usd=-1000.0), lying(prompt_tokens=10, cost_usd=0.02)])
    first, second = llm.complete(PROMPT), llm.complete(PROMPT)
    assert first.cost_usd is None and second.cost_usd == pytest.approx(0.02)
    assert llm.usage.cost_usd == pytest.approx(0.02)
    assert llm.usage.snapshot().calls_without_cost == 1


def test_cached_prompt_tokens_beyond_the_prompt_are_not_counted():
    spent = call_spend(100, 5, 0.0, cached_prompt_tokens=500, prompt_chars=300, reply_chars=10)
    assert spent.cached_prompt_tokens == 0
    assert call_spend(100, 5, 0.0, cached_prompt_tokens=40, prompt_chars=300, reply_chars=10).cached_prompt_tokens == 40


def test_totals_never_go_down_whatever_a_server_reports(make_llm):
    replies = [lying(p, c, cost) for p in (-(10**6), 3) for c in (-7, 9) for cost in (-1.0, math.nan, 0.5)]
    llm, _ = make_llm(replies)
    previous = llm.usage.snapshot()
    for _ in replies:
        llm.complete(PROMPT)
        now = llm.usage.snapshot()
        assert now.prompt_tokens >= previous.prompt_tokens and now.completion_tokens >= previous.completion_tokens
        assert now.cost_usd >= previous.cost_usd and math.isfinite(now.cost_usd)
        previous = now


@pytest.fixture
def lying_http_server():
    """An OpenAI-compatible server on 127.0.0.1 that reports -1,000,000 prompt tokens."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "liar",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": -1_000_000, "completion_tokens": 10, "total_tokens": -999_990},
            }
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_lying_http_server_cannot_switch_a_token_budget_off(lying_http_server, retry):
    llm = LLM(
        "openai/liar",
        api_base=lying_http_server,
        api_key="sk-local",
        retry=retry,
        cache=False,
        budget=Budget(max_tokens=2000),
    )
    prompt = PROMPT * 30
    with pytest.raises(BudgetExceeded):
        for _ in range(20):
            llm.complete(prompt)
    assert 1 <= llm.usage.calls < 20
    assert llm.usage.prompt_tokens > 0 and llm.usage.total_tokens >= 2000
