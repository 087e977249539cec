"""One OptoPrime step against a scripted model: re-asks, all-or-nothing, reports, state."""

from __future__ import annotations

import json

import pytest

import tracegrad as tg
from tracegrad.llm import Budget, BudgetExceeded
from tracegrad.llm.tokens import estimate_tokens
from tracegrad.optimizers.llm.optimizer import MAX_REPLY_TOKENS, MIN_REPLY_TOKENS, reply_tokens
from tracegrad.optimizers.llm.optoprime import OptoPrime


def reply(suggestion=None, reasoning="because", **extra):
    return json.dumps({"reasoning": reasoning, "answer": None, "suggestion": suggestion or {}, **extra})


@pytest.fixture
def graph():
    """``out = scale * x + bias`` with feedback; returns (scale, bias, out)."""
    scale = tg.parameter(2.0, tg.Number(0, 10), name="scale")
    bias = tg.parameter(1, tg.Integer(-5, 5), name="bias")
    out = scale * tg.node(3.0, name="x") + bias
    out.backward("The output should be 10.")
    return scale, bias, out


def make_opt(make_llm, params, script, **options):
    llm, transport = make_llm(script)
    return OptoPrime(params, llm=llm, **options), transport


def test_valid_suggestion_is_applied_and_reported(make_llm, graph):
    scale, bias, _ = graph
    opt, transport = make_opt(
        make_llm,
        [scale, bias],
        [
            {
                "text": reply({"scale": 3.0, "bias": "1"}, "raise scale"),
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "cost_usd": 0.002,
            },
        ],
    )
    report = opt.step()
    assert (scale.data, bias.data) == (3.0, 1)
    assert report.status == "updated" and report.changed
    assert report.reasoning == "raise scale"
    assert (report.prompt_tokens, report.completion_tokens, report.cost_usd, report.calls) == (120, 30, 0.002, 1)
    assert {u.name: (u.old, u.new) for u in report.updates} == {"scale": (2.0, 3.0), "bias": (1, 1)}
    assert "scale: 2.0 -> 3.0" in report.summary() and "$0.0020" in report.summary()
    user = transport.requests[0].messages[-1]["content"]
    assert "scale=2.0  # number in [0.0, 10.0]" in user and "The output should be 10." in user


def test_rejected_suggestion_is_asked_again_with_the_reason(make_llm, graph):
    scale, bias, _ = graph
    opt, transport = make_opt(
        make_llm,
        [scale, bias],
        [
            reply({"scale": 50.0}),
            reply({"scale": 4.0}),
        ],
    )
    report = opt.step()
    assert scale.data == 4.0 and report.status == "updated"
    assert report.attempts == 2 and len(report.rejections) == 1
    followup = transport.requests[1].messages
    assert followup[-2]["role"] == "assistant" and "50.0" in followup[-2]["content"]
    assert "scale" in followup[-1]["content"] and "10" in followup[-1]["content"]


def test_updates_are_all_or_nothing_and_retries_are_bounded(make_llm, graph):
    scale, bias, _ = graph
    bad = reply({"scale": 5.0, "bias": 99})
    opt, transport = make_opt(make_llm, [scale, bias], [bad, bad, bad, bad], max_attempts=3)
    report = opt.step()
    assert (scale.data, bias.data) == (2.0, 1)  # the valid scale was not applied alone
    assert report.status == "rejected" and not report.changed
    assert len(transport.requests) == 3 and report.attempts == 3


def test_unknown_variable_is_rejected(make_llm, graph):
    scale, bias, _ = graph
    opt, _ = make_opt(make_llm, [scale, bias], [reply({"x": 1.0}), reply({})])
    report = opt.step()
    assert report.rejections[0].name == "x" and "scale" in report.rejections[0].reason
    assert report.status == "unchanged" and (scale.data, bias.data) == (2.0, 1)


def test_text_around_json_and_fences_are_tolerated(make_llm, graph):
    scale, bias, _ = graph
    text = 'Sure!\n```json\n{"reasoning": "r", "suggestion": {"scale": "2.5"}}\n```\nDone.'
    opt, _ = make_opt(make_llm, [scale, bias], [text])
    assert opt.step().status == "updated" and scale.data == 2.5


def test_a_model_that_answers_nothing_useful_changes_nothing(make_llm, graph):
    scale, bias, _ = graph
    opt, transport = make_opt(make_llm, [scale, bias], lambda request: "I am not sure what you mean. " * 500)
    report = opt.step()
    assert report.status == "no_reply" and not report.updates
    assert (scale.data, bias.data) == (2.0, 1)
    assert report.attempts == 3
    assert len(transport.requests) == 3  # max_attempts bounds the model calls of a step
    for request in transport.requests:  # re-asks show the reply cut, within the prompt budget
        assert estimate_tokens("".join(m["content"] for m in request.messages)) <= opt.prompt_tokens


def test_terminate_means_no_change_without_asking_again(make_llm, graph):
    scale, bias, _ = graph
    opt, _ = make_opt(make_llm, [scale, bias], ["TERMINATE", "TERMINATE"])
    report = opt.step()
    assert report.status == "unchanged" and report.attempts == 1


def test_no_feedback_means_no_model_call(make_llm):
    p = tg.parameter(1.0, name="p")
    opt, transport = make_opt(make_llm, [p], [])
    report = opt.step()
    assert report.status == "no_feedback" and transport.requests == []


def test_step_report_is_logged_as_json_lines(make_llm, graph, tmp_path):
    scale, bias, _ = graph
    log = tmp_path / "steps.jsonl"
    opt, _ = make_opt(make_llm, [scale, bias], [reply({"scale": 3.5}, "why"), reply({})], log_path=log)
    opt.step()
    opt.step()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [entry["step"] for entry in lines] == [1, 2]
    assert lines[0]["reasoning"] == "why" and lines[0]["changed"] is True
    assert lines[0]["updates"] == [{"name": "scale", "old": 2.0, "new": 3.5}]
    assert lines[1]["changed"] is False


def test_memory_shows_earlier_values_and_feedback(make_llm, graph):
    scale, bias, _ = graph
    opt, transport = make_opt(make_llm, [scale, bias], [reply({"scale": 3.0}), reply({})], memory_size=2)
    opt.step()
    first = transport.requests[0].messages[-1]["content"]
    assert "#History" not in first
    opt.zero_feedback()
    out2 = scale * 3.0 + bias
    out2.backward("Closer, still too high.")
    opt.step()
    second = transport.requests[1].messages[-1]["content"]
    assert "#History\nscale=2.0, bias=1\nfeedback: The output should be 10." in second
    assert second.rstrip().endswith("Closer, still too high.")


def test_state_dict_round_trip_keeps_memory(make_llm, graph):
    scale, bias, _ = graph
    opt, _ = make_opt(make_llm, [scale, bias], [reply({"scale": 3.0})], memory_size=3)
    opt.step()
    state = json.loads(json.dumps(opt.state_dict()))
    fresh, _ = make_opt(make_llm, [scale, bias], [], memory_size=3)
    fresh.load_state_dict(state)
    assert fresh.step_count == 1 and fresh.history() == opt.history()


def test_prompt_stays_within_its_token_budget(make_llm):
    p = tg.parameter("p", name="prompt")
    h = p
    for _ in range(50):
        h = h + "word " * 200
    h.backward("too long " * 50)
    opt, transport = make_opt(make_llm, [p], [reply({})], prompt_tokens=2000)
    opt.step()
    sent = transport.requests[0].messages
    assert sum(estimate_tokens(m["content"]) for m in sent) <= 2000


def test_budget_errors_propagate_and_change_nothing(make_llm, graph):
    scale, bias, _ = graph
    llm, _ = make_llm([reply({"scale": 9.0})], budget=Budget(max_calls=0))
    opt = OptoPrime([scale, bias], llm=llm)
    with pytest.raises(BudgetExceeded):
        opt.step()
    assert scale.data == 2.0 and opt.step_count == 0


async def test_astep_does_the_same_asynchronously(make_llm, graph, tmp_path):
    scale, bias, _ = graph
    opt, _ = make_opt(make_llm, [scale, bias], [reply({"scale": "x"}), reply({"scale": 1.0})], log_path=tmp_path / "l")
    report = await opt.astep()
    assert scale.data == 1.0 and report.attempts == 2 and opt.step_count == 1
    assert (tmp_path / "l").read_text().count("\n") == 1


def test_answer_is_reported(make_llm, graph):
    scale, bias, _ = graph
    opt, _ = make_opt(make_llm, [scale, bias], [json.dumps({"reasoning": "r", "answer": "42", "suggestion": {}})])
    assert opt.step().answer == "42"


def test_json_that_is_not_a_reply_is_asked_again_not_taken_as_no_change(make_llm, graph):
    scale, bias, _ = graph
    schema_echo = json.dumps({"title": "Reply", "type": "object", "properties": {}})
    opt, transport = make_opt(make_llm, [scale, bias], [schema_echo, reply({"scale": 3.0})])
    report = opt.step()
    assert report.status == "updated" and report.attempts == 2
    assert scale.data == 3.0
    assert "none of the keys" in transport.requests[1].messages[-1]["content"]


def test_a_reply_cut_off_at_the_length_limit_is_asked_again(make_llm, graph):
    scale, bias, _ = graph
    cut = {"text": reply({"scale": 4.0}), "finish_reason": "length"}
    opt, transport = make_opt(make_llm, [scale, bias], [cut, cut, cut], max_attempts=3)
    report = opt.step()
    assert report.status == "no_reply" and not report.changed
    assert scale.data == 2.0  # a cut-off suggestion is never applied
    assert "cut off" in transport.requests[1].messages[-1]["content"]


def test_optimizer_calls_ask_for_a_bounded_reply_by_default(make_llm, graph):
    scale, bias, out = graph
    opt, transport = make_opt(make_llm, [scale, bias], [reply()])
    opt.step()
    assert transport.requests[0].params["max_tokens"] == MIN_REPLY_TOKENS  # two numbers: the floor
    out.backward("The output should be 10.")  # the step consumed the feedback
    opt, transport = make_opt(make_llm, [scale, bias], [reply()], max_tokens=300)
    opt.step()
    assert transport.requests[0].params["max_tokens"] == 300


def test_the_default_reply_bound_grows_with_the_variables_and_stays_bounded(make_llm):
    small = tg.parameter("Be brief.", name="prompt")
    assert reply_tokens([small]) == MIN_REPLY_TOKENS
    code = tg.parameter("x = 1\n" * 200, name="long")  # about 300 tokens: a rewrite may grow
    assert MIN_REPLY_TOKENS < reply_tokens([code]) < MAX_REPLY_TOKENS
    assert reply_tokens([code, small]) > reply_tokens([code])
    assert reply_tokens([tg.parameter("word " * 5000, name="huge")]) == MAX_REPLY_TOKENS
    llm, transport = make_llm([reply()])
    tg.bundle()(len)(code).backward("shorter, please")
    OptoPrime([code], llm=llm).step()
    assert transport.requests[0].params["max_tokens"] == reply_tokens([code])


def test_cost_of_a_run_is_projected_before_it_starts(make_llm, graph):
    scale, bias, _ = graph
    opt, transport = make_opt(make_llm, [scale, bias], [])
    estimate = opt.estimate_cost(steps=10)
    assert transport.requests == []  # nothing was sent
    assert estimate.calls == 10 and estimate.prompt_tokens > 50
    assert estimate.completion_tokens == MIN_REPLY_TOKENS  # the bounded reply
    opt.zero_feedback()
    assert opt.estimate_cost() is None


def test_a_prompt_budget_too_small_to_say_anything_is_refused(make_llm, graph):
    scale, bias, _ = graph
    with pytest.raises(ValueError, match="prompt_tokens=300"):
        make_opt(make_llm, [scale, bias], [], prompt_tokens=300)


def test_an_unknown_price_is_reported_as_unknown_not_free(make_llm, graph):
    scale, bias, _ = graph
    opt, _ = make_opt(make_llm, [scale, bias], [{"text": reply({"scale": 3.0}), "cost_usd": None}])
    report = opt.step()
    assert report.cost_usd is None and "unknown cost" in report.summary()


async def test_concurrent_steps_on_a_shared_client_report_only_their_own_calls(make_llm):
    import asyncio

    from tracegrad.llm import ScriptedTransport

    class Slow(ScriptedTransport):
        async def acomplete(self, request):
            await asyncio.sleep(0.01)  # both steps are in flight at once
            return self.complete(request)

    answer = {"text": reply(), "prompt_tokens": 100, "completion_tokens": 10, "cost_usd": 0.01}
    llm, _ = make_llm([])
    llm.transport = Slow([answer, answer])
    optimizers = []
    for name in ("a", "b"):
        p = tg.parameter(1.0, name=name)
        (p * 2).backward("make it bigger")
        optimizers.append(OptoPrime([p], llm=llm))
    reports = await asyncio.gather(*(o.astep() for o in optimizers))
    assert [(r.calls, r.prompt_tokens, r.cost_usd) for r in reports] == [(1, 100, 0.01), (1, 100, 0.01)]
    assert llm.usage.snapshot().calls == 2
