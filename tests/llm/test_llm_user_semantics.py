"""The client as a user of the reference library meets it: nothing unknown reaches a
provider, a provider's own parameters have one place, and copies share what must be
shared (transport, cache, ledger) and own their settings."""

from __future__ import annotations

import copy

import pytest

from tracegrad.llm import LLM, Budget, BudgetExceeded, LLMRequest, ScriptedTransport, Usage


def scripted(*replies, **kw):
    kw.setdefault("cache", False)
    return LLM("test/model", transport=ScriptedTransport(list(replies)), **kw)


# -- unknown keyword arguments ----------------------------------------------------------


def test_an_unknown_keyword_of_the_client_is_refused_with_the_closest_name():
    with pytest.raises(TypeError) as err:
        scripted(temprature=0.2, mock_response="x")
    message = str(err.value)
    assert "'temprature' (did you mean 'temperature'?)" in message
    assert "'mock_response'" in message and "extra={" in message


def test_an_unknown_setting_of_one_call_is_refused_before_anything_is_sent():
    llm = scripted("never sent")
    with pytest.raises(TypeError, match=r"'max_token' \(did you mean 'max_tokens'\?\)"):
        llm.complete("hi", max_token=5)
    assert llm.transport.requests == []


def test_a_providers_own_parameters_go_through_extra():
    llm = scripted("a", "b", temperature=0.5, extra={"reasoning_effort": "low"})
    llm.complete("hi")
    llm.complete("hi", extra={"logprobs": True}, seed=3)
    first, second = (r.params for r in llm.transport.requests)
    assert first == {"temperature": 0.5, "reasoning_effort": "low"}
    assert second == {"temperature": 0.5, "reasoning_effort": "low", "logprobs": True, "seed": 3}


def test_extra_may_not_hold_a_sampling_setting():
    with pytest.raises(TypeError, match="'temperature' as a keyword argument"):
        scripted(extra={"temperature": 1.0})


def test_the_cache_key_is_the_same_whichever_way_a_setting_came():
    expected = LLMRequest(
        model="test/model",
        messages=[{"role": "user", "content": "hi"}],
        params={"temperature": 0, "max_tokens": 20, "mock_response": "x"},
    ).key
    by_client = scripted(temperature=0, max_tokens=20, extra={"mock_response": "x"}).request("hi")
    by_call = scripted().request("hi", temperature=0.0, max_tokens=20, extra={"mock_response": "x"})
    by_copy = scripted().with_settings(temperature=0, max_tokens=20, extra={"mock_response": "x"}).request("hi")
    assert by_client.key == by_call.key == by_copy.key == expected


def test_with_settings_removes_a_setting_given_as_none():
    llm = scripted(temperature=0.3, seed=1)
    assert llm.with_settings(temperature=None).settings == {"seed": 1}
    assert llm.settings == {"temperature": 0.3, "seed": 1}


# -- copies ----------------------------------------------------------------------------------


def test_a_deep_copy_of_a_client_shares_transport_cache_and_ledger_and_owns_its_settings(tmp_path):
    llm = LLM("test/model", transport=ScriptedTransport(["a"]), cache_dir=tmp_path, temperature=0)
    twin = copy.deepcopy(llm)
    assert twin.transport is llm.transport and twin.usage is llm.usage and twin.cache is llm.cache
    twin.settings["temperature"] = 1.0
    assert llm.settings == {"temperature": 0}
    assert copy.copy(llm).settings is not llm.settings


def test_copies_of_a_client_answer_from_one_cache():
    llm = LLM("test/model", transport=ScriptedTransport(["only once"]), temperature=0)
    twin = copy.deepcopy(llm)
    assert llm.complete("hi").text == "only once"
    assert twin.complete("hi").cached  # the copy's identical request is a cache hit


def test_copies_of_a_client_spend_one_budget():
    llm = scripted("a", "b", usage=Usage(Budget(max_calls=1)))
    twin = copy.deepcopy(llm)
    llm.complete("first")
    with pytest.raises(BudgetExceeded):
        twin.complete("second")
    assert llm.usage.calls == 1
