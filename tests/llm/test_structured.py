"""Structured output: provider modes, strict parsing with repair, and the repair turn."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tracegrad._text import marker
from tracegrad.llm import (
    LLM,
    LLMCallError,
    LLMConfigError,
    ScriptedTransport,
    StructuredOutputError,
)
from tracegrad.llm.retry import classify, refuses_response_format
from tracegrad.llm.structured import (
    REPAIR_REPLY_CHARS,
    REPAIR_TURN_CHARS,
    ParseFailure,
    extract_json,
    parse_structured,
)


class Answer(BaseModel):
    reasoning: str
    value: int
    ok: bool = True


# -- parsing and repair ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"reasoning": "r", "value": 1}', {"reasoning": "r", "value": 1}),
        (
            'Sure! Here you go:\n```json\n{"reasoning": "r", "value": 2}\n```\nAnything else?',
            {"reasoning": "r", "value": 2},
        ),
        ('```\n{"reasoning": "r", "value": 3}\n```', {"reasoning": "r", "value": 3}),
        ('The answer is {"reasoning": "r", "value": 4} as requested.', {"reasoning": "r", "value": 4}),
        ('{"reasoning": "r", "value": 5,}', {"reasoning": "r", "value": 5}),
        ("{'reasoning': 'r', 'value': 6}", {"reasoning": "r", "value": 6}),
        ("{'reasoning': None, 'value': 7, 'ok': False}", {"reasoning": None, "value": 7, "ok": False}),
        ('{"reasoning": "line one\nline two", "value": 8}', {"reasoning": "line one\nline two", "value": 8}),
    ],
    ids=[
        "strict",
        "fence-in-prose",
        "bare-fence",
        "prose",
        "trailing-comma",
        "single-quotes",
        "python-literals",
        "raw-newline",
    ],
)
def test_extract_json_repairs_common_damage(text, expected):
    assert extract_json(text) == expected


def test_parse_structured_validates_and_picks_the_object_that_fits():
    got = parse_structured('First {"note": 1} then {"reasoning": "r", "value": "9"}', Answer)
    assert got == Answer(reasoning="r", value=9)


@pytest.mark.parametrize("text", ["", "no json here at all", "   "])
def test_no_json_is_a_parse_failure(text):
    with pytest.raises(ParseFailure, match="no JSON"):
        parse_structured(text, Answer)


def test_invalid_object_reason_names_the_field():
    with pytest.raises(ParseFailure) as err:
        parse_structured('{"reasoning": "r", "value": "many"}', Answer)
    assert "value" in str(err.value) and "Answer" in str(err.value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.from_regex(r"[\{\}\[\]\"',:a-z0-9 \n`]{0,80}", fullmatch=True))
def test_repair_never_raises_anything_but_parse_failure(text):
    with contextlib.suppress(ParseFailure):
        parse_structured(text, Answer)
    with contextlib.suppress(ParseFailure):
        extract_json(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30), st.integers(-(10**6), 10**6), st.booleans())
def test_valid_json_always_round_trips(reasoning, value, ok):
    obj = Answer(reasoning=reasoning, value=value, ok=ok)
    assert parse_structured(obj.model_dump_json(), Answer) == obj
    assert parse_structured(f"Result:\n```json\n{obj.model_dump_json(indent=2)}\n```", Answer) == obj


# -- modes ---------------------------------------------------------------------------------------

GOOD = '{"reasoning": "because", "value": 42}'


def test_json_schema_mode_sends_the_schema(make_llm):
    llm, t = make_llm([GOOD], structured_mode="json_schema")
    done = llm.complete("What is it?", schema=Answer)
    assert done.parsed == Answer(reasoning="because", value=42) and done.text == GOOD
    fmt = t.requests[0].response_format
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Answer"
    assert fmt["json_schema"]["schema"] == Answer.model_json_schema()
    assert t.requests[0].messages == [{"role": "user", "content": "What is it?"}]


@pytest.mark.parametrize("mode", ["json_object", "text"])
def test_weaker_modes_put_the_schema_in_the_prompt(make_llm, mode):
    llm, t = make_llm([f"Here:\n```json\n{GOOD}\n```"], structured_mode=mode)
    done = llm.complete([{"role": "system", "content": "sys"}, {"role": "user", "content": "Q?"}], schema=Answer)
    assert done.parsed.value == 42
    req = t.requests[0]
    assert req.response_format == ({"type": "json_object"} if mode == "json_object" else None)
    assert req.messages[0] == {"role": "system", "content": "sys"}
    assert req.messages[-1]["content"].startswith("Q?") and "JSON" in req.messages[-1]["content"]
    assert json.dumps(Answer.model_json_schema(), sort_keys=True) in req.messages[-1]["content"]


def test_client_mode_setting_overrides_the_transport(retry):
    t = ScriptedTransport([GOOD], structured_mode="json_schema")
    llm = LLM("test/model", transport=t, retry=retry, structured_mode="text")
    llm.complete("Q", schema=Answer)
    assert t.requests[0].response_format is None


def test_unknown_mode_is_a_config_error():
    with pytest.raises(LLMConfigError):
        LLM("test/model", transport=ScriptedTransport([]), structured_mode="yaml")


def test_a_bad_reply_gets_one_repair_turn_showing_the_error(make_llm):
    llm, t = make_llm(['{"reasoning": "r", "value": "lots"}', GOOD])
    done = llm.complete("Q", schema=Answer)
    assert done.parsed.value == 42 and done.attempts == 2
    retry = t.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": '{"reasoning": "r", "value": "lots"}'}
    assert retry[-1]["role"] == "user" and "value" in retry[-1]["content"]
    assert llm.usage.calls == 2


def test_structured_failure_is_a_clear_error_with_the_raw_text(make_llm):
    llm, t = make_llm(["I refuse.", "Still no."])
    with pytest.raises(StructuredOutputError) as err:
        llm.complete("Q", schema=Answer)
    assert err.value.raw_text == "Still no." and err.value.attempts == 2
    assert "no JSON" in err.value.reason and "Answer" in str(err.value)
    assert len(t.requests) == 2


def test_structured_retries_are_configurable(make_llm):
    llm, t = make_llm(["nope", "nope", "nope", GOOD], structured_retries=0)
    with pytest.raises(StructuredOutputError):
        llm.complete("Q", schema=Answer)
    assert len(t.requests) == 1
    llm.structured_retries = 3
    assert llm.complete("Q2", schema=Answer).parsed.value == 42


def test_refused_response_format_falls_back_to_a_weaker_mode(make_llm):
    class BadRequestError(Exception):
        status_code = 400

    llm, t = make_llm([BadRequestError("response_format not supported"), GOOD, GOOD])
    assert llm.complete("Q", schema=Answer).parsed.value == 42
    assert t.requests[0].response_format["type"] == "json_schema"
    assert t.requests[1].response_format == {"type": "json_object"}
    llm.complete("Q again", schema=Answer)
    assert t.requests[2].response_format == {"type": "json_object"}  # remembered


def test_a_server_error_about_the_response_format_also_falls_back(make_llm):
    class InternalServerError(Exception):
        status_code = 500

    refusal = InternalServerError("response_format: Input should be 'text' or 'json_object'")
    llm, t = make_llm([refusal, GOOD])  # no pointless retries: the format is dropped at once
    assert llm.complete("Q", schema=Answer).parsed.value == 42
    assert len(t.requests) == 2
    assert t.requests[-1].response_format == {"type": "json_object"}


def test_unrelated_bad_requests_do_not_change_the_mode(make_llm):
    class BadRequestError(Exception):
        status_code = 400

    llm, t = make_llm([BadRequestError("temperature must be <= 2")])
    with pytest.raises(LLMCallError) as err:
        llm.complete("Q", schema=Answer, temperature=5)
    assert err.value.kind == "bad_request" and len(t.requests) == 1


def test_other_errors_are_not_masked_by_structured_output(make_llm):
    class AuthenticationError(Exception):
        pass

    llm, _ = make_llm([AuthenticationError("bad key")])
    with pytest.raises(LLMCallError) as err:
        llm.complete("Q", schema=Answer)
    assert err.value.kind == "auth"


def test_structured_calls_are_cached_on_the_whole_request(make_llm):
    llm, t = make_llm([GOOD, GOOD], temperature=0)
    a = llm.complete("Q", schema=Answer)
    b = llm.complete("Q", schema=Answer)
    assert b.cached and b.parsed == a.parsed and len(t.requests) == 1

    class Other(BaseModel):
        reasoning: str
        value: int

    llm.complete("Q", schema=Other)
    assert len(t.requests) == 2  # another schema is another request


def test_async_structured_with_repair(make_llm):
    llm, t = make_llm(["not json", GOOD], structured_mode="text")
    done = asyncio.run(llm.acomplete("Q", schema=Answer))
    assert done.parsed.value == 42 and len(t.requests) == 2


def test_schema_must_be_a_pydantic_model(make_llm):
    llm, _ = make_llm([GOOD])
    with pytest.raises(TypeError, match="BaseModel"):
        llm.complete("Q", schema=dict)


# -- the caller's check and the one repair loop -----------------------------------------------


def test_a_check_rejecting_a_parsed_reply_gets_a_repair_turn_with_its_reasons(make_llm):
    llm, t = make_llm(['{"reasoning": "r", "value": 7}', GOOD])
    seen = []

    def even(done):
        seen.append(done.parsed)
        return [] if done.parsed.value % 2 == 0 else [f"value {done.parsed.value} must be even"]

    done = llm.complete("Q", schema=Answer, check=even, repairs=2)
    assert done.parsed.value == 42 and [a.value for a in seen] == [7, 42]
    assert "value 7 must be even" in t.requests[1].messages[-1]["content"]


def test_a_check_sees_unparsed_replies_and_may_accept_them(make_llm):
    llm, t = make_llm(["STOP", GOOD])

    def stop_word(done):
        if done.parsed is None:
            return [] if done.text == "STOP" else [done.parse_error]
        return []

    done = llm.complete("Q", schema=Answer, check=stop_word, repairs=3)
    assert done.parsed is None and done.text == "STOP" and "no JSON" in done.parse_error
    assert len(t.requests) == 1


def test_repairs_are_bounded_and_the_error_carries_the_spend_of_every_turn(make_llm):
    turn = {"text": '{"reasoning": "r", "value": 1}', "prompt_tokens": 10, "completion_tokens": 2, "cost_usd": 0.5}
    llm, t = make_llm([turn] * 5)
    with pytest.raises(StructuredOutputError) as err:
        llm.complete("Q", schema=Answer, check=lambda done: ["never good"], repairs=2)
    assert len(t.requests) == 3 and err.value.attempts == 3 and err.value.reason == "never good"
    spent = err.value.completion.usage
    assert (spent.calls, spent.prompt_tokens, spent.completion_tokens) == (3, 30, 6)
    assert err.value.completion.cost_usd == pytest.approx(1.5)
    assert err.value.completion.request.messages == t.requests[-1].messages


def test_a_structured_completion_carries_the_totals_of_its_turns(make_llm):
    bad = {"text": "no json", "prompt_tokens": 10, "completion_tokens": 2, "cost_usd": None}
    good = {"text": GOOD, "prompt_tokens": 20, "completion_tokens": 3, "cost_usd": 0.25}
    llm, t = make_llm([bad, good])
    done = llm.complete("Q", schema=Answer)
    assert (done.usage.calls, done.usage.prompt_tokens, done.usage.completion_tokens) == (2, 30, 5)
    assert done.cost_usd is None  # one turn's price is unknown: the total is not known
    assert done.usage == llm.usage.snapshot() and done.request is t.requests[-1]


def test_a_repair_turn_shows_only_the_last_reply_cut_with_the_one_marker(make_llm):
    long_reply = "x" * 5000
    llm, t = make_llm([long_reply, "second", GOOD], structured_mode="text")
    llm.complete("Q", schema=Answer, repairs=2)
    first, second, third = (r.messages for r in t.requests)
    assert len(second) == len(third) == len(first) + 2  # repair turns do not pile up
    shown = second[-2]["content"]
    assert marker(5000 - REPAIR_REPLY_CHARS) in shown and len(shown) < REPAIR_REPLY_CHARS + 40
    assert third[-2]["content"] == "second"
    added = sum(len(m["content"]) for m in second) - sum(len(m["content"]) for m in first)
    assert added <= REPAIR_TURN_CHARS


def test_a_check_without_a_schema_is_refused(make_llm):
    llm, _ = make_llm(["x"])
    with pytest.raises(TypeError, match="schema"):
        llm.complete("Q", check=lambda done: [])


@pytest.mark.parametrize(
    ("message", "refuses"),
    [
        ("response_format not supported", True),
        ("response_format: Input should be 'text' or 'json_object'", True),
        ("json_schema is not supported by this model", True),
        ("Invalid response format: json mode unavailable", True),
        ("temperature must be <= 2", False),
        ("Invalid JSON in request body", False),
        ("upstream schema registry timed out", False),
    ],
)
def test_one_rule_says_when_a_provider_refuses_the_response_format(message, refuses):
    class InternalServerError(Exception):
        status_code = 500

    assert refuses_response_format(Exception(message)) is refuses
    kind, retryable, _ = classify(InternalServerError(message))
    assert (kind == "bad_request" and not retryable) is refuses
