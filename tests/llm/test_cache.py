"""The response cache: keyed on the whole request, safe under threads and processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad
from tracegrad.llm import LLMRequest, ResponseCache, TransportResponse
from tracegrad.llm.cache import default_cache_path

# -- the key -------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(-10, 10, allow_nan=False), st.text(max_size=8)
)
param_values = st.one_of(scalars, st.lists(scalars, max_size=3))
param_names = st.sampled_from(
    ["temperature", "top_p", "seed", "max_tokens", "stop", "presence_penalty", "frequency_penalty", "n", "logprobs"]
)
params = st.dictionaries(param_names, param_values, max_size=5)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=20)}),
    min_size=1,
    max_size=3,
)


def req(**kw) -> LLMRequest:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "params": {"temperature": 0}}
    return LLMRequest(**{**base, **kw})


@settings(max_examples=150, deadline=None)
@given(params, messages)
def test_key_does_not_depend_on_dict_order(p, msgs):
    reordered = dict(reversed(list(p.items())))
    assert req(params=p, messages=msgs).key == req(params=reordered, messages=[dict(m) for m in msgs]).key


def _same(a, b) -> bool:
    """Equal as settings: 1 and 1.0 are the same temperature, True and 1 are not."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return a == b
    return type(a) is type(b) and a == b


@settings(max_examples=200, deadline=None)
@given(params, param_names, param_values)
def test_any_change_of_any_setting_changes_the_key(p, name, value):
    changed = {**p, name: value}
    if not (name in p and _same(p[name], value)):
        assert req(params=p).key != req(params=changed).key


@settings(max_examples=100, deadline=None)
@given(params, param_names)
def test_adding_or_removing_a_setting_changes_the_key(p, name):
    without = {k: v for k, v in p.items() if k != name}
    assert req(params=without).key != req(params={**without, name: p.get(name, 0)}).key


@settings(max_examples=100, deadline=None)
@given(messages, messages)
def test_different_messages_give_different_keys(a, b):
    if a != b:
        assert req(messages=a).key != req(messages=b).key


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other"},
        {"api_base": "http://127.0.0.1:1/v1"},
        {"response_format": {"type": "json_object"}},
        {"sample_index": 1},
        {"params": {"temperature": 0, "seed": 3}},
        {"params": {"temperature": 0.0001}},
    ],
)
def test_every_part_of_the_request_is_in_the_key(change):
    assert req().key != req(**change).key


def test_key_ignores_secrets_and_timeouts_and_number_spelling():
    assert req(api_key="a", timeout=1).key == req(api_key="b", timeout=2).key
    assert req(params={"temperature": 0}).key == req(params={"temperature": 0.0}).key


# -- the store -----------------------------------------------------------------------------


def test_default_path_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_path() == tmp_path / "c" / "llm.sqlite"
    monkeypatch.delenv("TRACEGRAD_CACHE_DIR")
    assert default_cache_path() == Path.home() / ".cache" / "tracegrad" / "llm.sqlite"


def test_store_round_trip_in_wal_mode(tmp_path):
    cache = ResponseCache(tmp_path)
    resp = TransportResponse(text="hé", model="m", prompt_tokens=3, completion_tokens=4, cost_usd=0.1, raw={"a": [1]})
    assert cache.get(req()) is None
    cache.put(req(), resp)
    assert cache.get(req()) == resp and len(cache) == 1
    with sqlite3.connect(cache.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cache.clear()
    assert len(cache) == 0


def test_corrupt_cache_file_does_not_break_calls(tmp_path, make_llm):
    path = tmp_path / "llm.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    llm, _ = make_llm(["a", "b"], temperature=0, cache=ResponseCache(path))
    assert llm.complete("x").text == "a" and llm.complete("x").text == "b"


# -- the policy -------------------------------------------------------------------------------


def test_temperature_zero_is_cached_by_default(make_llm):
    llm, t = make_llm(["first", "second"], temperature=0)
    a, b = llm.complete("x"), llm.complete("x")
    assert (a.text, b.text, a.cached, b.cached) == ("first", "first", False, True)
    assert b.cost_usd == 0.0 and len(t.requests) == 1
    assert (llm.usage.calls, llm.usage.cache_hits) == (1, 1)


@pytest.mark.parametrize("temperature", [None, 0.7, 1.0])
def test_sampled_requests_are_not_cached_by_default(make_llm, temperature):
    kw = {} if temperature is None else {"temperature": temperature}
    llm, _ = make_llm(["first", "second"], **kw)
    assert [llm.complete("x").text, llm.complete("x").text] == ["first", "second"]


def test_cache_opt_out_and_opt_in(make_llm):
    off, _ = make_llm(["a", "b"], temperature=0, cache=False)
    assert [off.complete("x").text, off.complete("x").text] == ["a", "b"]
    on, _ = make_llm(["a", "b"], temperature=0.9, cache=True)
    assert [on.complete("x").text, on.complete("x").text] == ["a", "a"]
    per_call, _ = make_llm(["a", "b"], temperature=0)
    assert [per_call.complete("x", cache=False).text, per_call.complete("x", cache=False).text] == ["a", "b"]


def test_a_different_setting_is_never_served_from_cache(make_llm):
    llm, _ = make_llm(["a", "b", "c", "d"], temperature=0, cache=True)
    texts = [llm.complete("x").text, llm.complete("x", seed=1).text, llm.complete("x", max_tokens=5).text]
    texts.append(llm.complete("x", temperature=0.5).text)
    assert texts == ["a", "b", "c", "d"]


def test_fresh_skips_the_lookup_and_replaces_the_entry(make_llm):
    llm, t = make_llm(["old", "new", "unused"], temperature=0)
    assert llm.complete("x").text == "old"
    assert llm.complete("x", fresh=True).text == "new"
    assert llm.complete("x").text == "new" and len(t.requests) == 2


def test_sample_index_keeps_samples_apart(make_llm):
    llm, t = make_llm(["s0", "s1", "unused"], temperature=0.8, cache=True)
    assert [llm.complete("x", sample_index=i).text for i in (0, 1)] == ["s0", "s1"]
    assert [llm.complete("x", sample_index=i).text for i in (0, 1)] == ["s0", "s1"]
    assert len(t.requests) == 2 and "sample_index" not in t.requests[0].params


def test_cache_persists_across_clients(make_llm):
    first, _ = make_llm(["persisted"], temperature=0)
    first.complete("x")
    second, t = make_llm([], temperature=0)
    assert second.complete("x").text == "persisted" and t.requests == []


def test_cache_dir_argument(make_llm, tmp_path):
    llm, _ = make_llm(["a"], temperature=0, cache_dir=tmp_path / "here")
    llm.complete("x")
    assert (tmp_path / "here" / "llm.sqlite").exists()


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_threads_do_not_corrupt_the_cache(tmp_path):
    cache = ResponseCache(tmp_path)
    errors = []

    def work(worker: int):
        try:
            for i in range(40):
                r = req(messages=[{"role": "user", "content": f"{worker}-{i}"}])
                cache.put(r, TransportResponse(text=f"{worker}-{i}"))
                assert cache.get(r).text == f"{worker}-{i}"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and len(cache) == 320


WORKER = textwrap.dedent(
    """
    import sys
    from tracegrad.llm.cache import ResponseCache
    from tracegrad.llm.request import LLMRequest, TransportResponse
    cache = ResponseCache(sys.argv[1])
    w = sys.argv[2]
    for i in range(60):
        r = LLMRequest(model="m", messages=[{"role": "user", "content": f"{w}-{i}"}])
        cache.put(r, TransportResponse(text=f"{w}-{i}"))
        shared = LLMRequest(model="m", messages=[{"role": "user", "content": "shared"}])
        cache.put(shared, TransportResponse(text=w))
        assert cache.get(r).text == f"{w}-{i}", "lost a write"
    """
)


def test_concurrent_processes_do_not_corrupt_the_cache(tmp_path):
    root = str(Path(tracegrad.__path__[0]).parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(w)], env=env, stderr=subprocess.PIPE)
        for w in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    cache = ResponseCache(tmp_path)
    assert len(cache) == 4 * 60 + 1
    with sqlite3.connect(cache.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_cache_key_tolerates_lone_surrogates():
    from tracegrad.llm import LLMRequest

    a = LLMRequest(model="m", messages=[{"role": "user", "content": "bad \ud800 text"}])
    b = LLMRequest(model="m", messages=[{"role": "user", "content": "bad \ud801 text"}])
    assert a.key != b.key


def test_transport_defaults_are_part_of_the_cache_key(tmp_path):
    from tracegrad.llm import LLM, ScriptedTransport

    class WithDefaults(ScriptedTransport):
        def __init__(self, script, defaults):
            super().__init__(script)
            self._defaults = defaults

        @property
        def defaults(self):
            return self._defaults

    a = LLM("m", transport=WithDefaults(["A"], {"top_p": 0.1}), cache_dir=tmp_path, temperature=0)
    b = LLM("m", transport=WithDefaults(["B"], {"top_p": 1.0}), cache_dir=tmp_path, temperature=0)
    assert a.complete("same question").text == "A"
    second = b.complete("same question")
    assert second.text == "B" and not second.cached


def test_an_unusable_cache_directory_does_not_break_a_call(tmp_path):
    from tracegrad.llm import LLM, ScriptedTransport

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    llm = LLM("m", transport=ScriptedTransport(["fine"]), cache_dir=blocker / "sub", temperature=0)
    assert llm.complete("hi").text == "fine"
