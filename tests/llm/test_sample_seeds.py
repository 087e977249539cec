"""Samples of one request are distinct, reproducible draws."""

from __future__ import annotations

from tracegrad.llm import LLM, ScriptedTransport


def test_a_sample_index_offsets_the_seed_and_the_cache_key():
    llm = LLM("test/model", transport=ScriptedTransport([]), seed=7, temperature=0.7)
    first, second = llm.request("hi"), llm.request("hi", sample_index=2)
    assert first.params["seed"] == 7 and second.params["seed"] == 9
    assert first.key != second.key
    assert llm.request("hi", sample_index=2).key == second.key  # the same sample again: the same draw


def test_without_a_seed_nothing_is_added():
    llm = LLM("test/model", transport=ScriptedTransport([]))
    assert "seed" not in llm.request("hi", sample_index=3).params
