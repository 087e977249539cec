"""A broken response cache never breaks a call: it is bypassed with one warning."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracegrad.llm import LLM, LLMError, LLMRequest, ResponseCache, ScriptedTransport, TransportResponse

QUESTIONS = [f"question {i}" for i in range(12)]


def cache_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tracegrad.llm" and "cache" in r.getMessage()]


def answering(prefix: str) -> ScriptedTransport:
    return ScriptedTransport(lambda req: f"{prefix}: {req.messages[-1]['content']}")


def filled_cache(directory: Path) -> bytes:
    """A cache file with an answer for every question, checkpointed into one file."""
    llm = LLM("m", transport=answering("cached"), cache=ResponseCache(directory), temperature=0)
    for q in QUESTIONS:
        llm.complete(q)
    with sqlite3.connect(directory / "llm.sqlite") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return (directory / "llm.sqlite").read_bytes()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> bytes:
    return filled_cache(tmp_path_factory.mktemp("pristine"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=16))
def test_a_byte_flipped_database_never_breaks_a_call(pristine, tmp_path_factory, flips):
    damaged = bytearray(pristine)
    for where, byte in flips:
        damaged[int(where * len(damaged))] = byte
    directory = tmp_path_factory.mktemp("flipped")
    (directory / "llm.sqlite").write_bytes(damaged)
    llm = LLM("m", transport=answering("model"), cache=ResponseCache(directory), temperature=0)
    for q in QUESTIONS:  # a flip inside a stored text goes unnoticed, as on any disk; nothing may raise
        assert isinstance(llm.complete(q).text, str)


def test_invalid_utf8_inside_a_stored_reply_is_a_miss(pristine, tmp_path):
    damaged = bytearray(pristine)
    at = damaged.index(b"cached: question 3")
    damaged[at + 2] = 0xFF  # the text column no longer decodes
    (tmp_path / "llm.sqlite").write_bytes(damaged)
    llm = LLM("m", transport=answering("model"), cache=ResponseCache(tmp_path), temperature=0)
    assert [llm.complete(q).text for q in QUESTIONS[2:5]] == [
        "cached: question 2",
        "model: question 3",
        "cached: question 4",
    ]


@pytest.mark.parametrize(
    "stored",
    [5, 2.5, b"\xff\xfe not utf-8", "not json", "[]", "null", '{"text": 5}', '{"text": "a", "prompt_tokens": "x"}'],
    ids=repr,
)
def test_a_row_of_the_wrong_type_is_a_miss_replaced_by_the_next_answer(tmp_path, caplog, stored):
    cache = ResponseCache(tmp_path)
    llm = LLM("m", transport=answering("model"), cache=cache, temperature=0)
    key = llm.request("hello").key
    cache.put(llm.request("hello"), TransportResponse(text="placeholder"))
    with sqlite3.connect(cache.path) as conn:
        conn.execute("UPDATE responses SET response = ? WHERE key = ?", (stored, key))
    with caplog.at_level(logging.WARNING, logger="tracegrad.llm"):
        first = llm.complete("hello")
    assert (first.text, first.cached) == ("model: hello", False)
    assert len(cache_warnings(caplog)) == 1
    second = llm.complete("hello")
    assert (second.text, second.cached) == ("model: hello", True)


@pytest.mark.parametrize("location", ["a directory in its place", "a file that is not a database", "under a file"])
def test_an_unusable_location_warns_once_and_leaks_no_file_handles(tmp_path, caplog, location):
    path = tmp_path / "llm.sqlite"
    if location == "a directory in its place":
        path.mkdir()
    elif location == "a file that is not a database":
        path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    else:
        (tmp_path / "blocker").write_text("a file, not a directory")
        path = tmp_path / "blocker" / "llm.sqlite"
    llm = LLM("m", transport=answering("model"), cache=ResponseCache(path), temperature=0)
    with caplog.at_level(logging.WARNING, logger="tracegrad.llm"):
        llm.complete("warm up")
        before = open_fds() if sys.platform == "linux" else 0
        answers = [llm.complete(f"call {i}").text for i in range(20)]
    assert answers == [f"model: call {i}" for i in range(20)]
    if sys.platform == "linux":
        assert open_fds() <= before
    assert len(cache_warnings(caplog)) == 1


def test_the_warning_names_the_cache_and_what_failed(tmp_path, caplog):
    (tmp_path / "llm.sqlite").write_bytes(b"garbage" * 1000)
    llm = LLM("m", transport=answering("model"), cache=ResponseCache(tmp_path), temperature=0)
    with caplog.at_level(logging.WARNING, logger="tracegrad.llm"):
        for i in range(5):
            llm.complete(f"q{i}")
    (warning,) = cache_warnings(caplog)
    assert str(tmp_path / "llm.sqlite") in warning and "not a database" in warning


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="permissions do not bind root")
def test_a_read_only_cache_still_answers_from_what_it_holds(tmp_path, caplog, pristine):
    (tmp_path / "llm.sqlite").write_bytes(pristine)
    (tmp_path / "llm.sqlite").chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        llm = LLM("m", transport=answering("model"), cache=ResponseCache(tmp_path), temperature=0)
        with caplog.at_level(logging.WARNING, logger="tracegrad.llm"):
            texts = [llm.complete(q).text for q in [*QUESTIONS[:2], "new one", "another new one"]]
    finally:
        tmp_path.chmod(0o755)
    assert texts[2:] == ["model: new one", "model: another new one"]
    assert len(cache_warnings(caplog)) <= 2  # at most: cannot be read, cannot be written


def test_counting_or_clearing_an_unusable_cache_is_a_clear_error(tmp_path):
    (tmp_path / "llm.sqlite").write_bytes(b"garbage" * 1000)
    cache = ResponseCache(tmp_path)
    with pytest.raises(LLMError, match="cannot be used"):
        len(cache)
    with pytest.raises(LLMError, match="cannot be used"):
        cache.clear()


def test_a_stored_response_is_type_checked_when_read_back(tmp_path):
    cache = ResponseCache(tmp_path)
    req = LLMRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    cache.put(req, TransportResponse(text="fine", prompt_tokens=3, raw={"id": "x"}))
    got = cache.get(req)
    assert got == TransportResponse(text="fine", prompt_tokens=3, raw={"id": "x"})
