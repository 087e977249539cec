"""Credentials passed to the client reach the provider and nothing else."""

from __future__ import annotations

import logging

import pytest

from tracegrad.llm import LLM, LLMCallError, LLMRequest, ReplayTransport, ResponseCache, ScriptedTransport

KEY = "sk-planted-api-key-0001"
BEARER = "bearer-token-planted-0002"
AWS = "aws-secret-planted-0003"
PASSWORD = "url-password-planted-0004"
ALL = (KEY, BEARER, AWS, PASSWORD)


def secret_llm(transport, **kw) -> LLM:
    return LLM(
        "test/model",
        transport=transport,
        api_key=KEY,
        api_base=f"https://alice:{PASSWORD}@llm.example.com/v1",
        extra={"extra_headers": {"Authorization": f"Bearer {BEARER}", "X-Team": "blue"}, "aws_secret_access_key": AWS},
        temperature=0,
        **kw,
    )


def assert_clean(text: str) -> None:
    leaked = [s for s in ALL if s in text]
    assert not leaked, f"leaked {leaked}"


def test_the_transport_gets_every_credential():
    transport = ScriptedTransport(["ok"])
    secret_llm(transport).complete("hi")
    (sent,) = transport.requests
    assert sent.api_key == KEY and PASSWORD in sent.api_base
    assert sent.params["extra_headers"]["Authorization"] == f"Bearer {BEARER}"
    assert sent.params["aws_secret_access_key"] == AWS


def test_the_key_ignores_credentials_but_not_other_settings():
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    def key(headers, api_base="https://u:p1@host/v1", **params):
        return LLMRequest(**base, params={"extra_headers": headers, **params}, api_base=api_base).key

    same = key({"Authorization": "Bearer one"})
    assert key({"Authorization": "Bearer two"}, api_base="https://u:p2@host/v1") == same
    assert key({"Authorization": "Bearer one", "X-Team": "red"}) != same
    assert key({"Authorization": "Bearer one"}, api_base="https://u:p1@other/v1") != same
    assert key({"Authorization": "Bearer one"}, aws_secret_access_key="a") == key(
        {"Authorization": "Bearer one"}, aws_secret_access_key="b"
    )
    assert key({"Authorization": "Bearer one"}, temperature=0.5) != same


def test_the_cache_file_holds_no_credential_and_serves_other_credentials(tmp_path):
    transport = ScriptedTransport(lambda req: f"reply quoting {req.api_key}")
    first = secret_llm(transport, cache=ResponseCache(tmp_path)).complete("hi")
    assert first.text == f"reply quoting {KEY}"  # the caller gets the reply as it came
    for path in tmp_path.iterdir():
        assert_clean(path.read_bytes().decode("utf-8", "replace"))
    other = LLM("test/model", transport=transport, api_key="sk-another-key", cache=ResponseCache(tmp_path))
    again = other.complete(
        "hi",
        temperature=0,
        api_base="https://alice:other-pass@llm.example.com/v1",
        extra={"extra_headers": {"Authorization": "Bearer x", "X-Team": "blue"}, "aws_secret_access_key": "y"},
    )
    assert again.cached and len(transport.requests) == 1


def test_a_replay_file_holds_no_credential_and_replays_with_other_ones(tmp_path):
    path = tmp_path / "replay.jsonl"
    recorder = ReplayTransport(path, record_from=ScriptedTransport(lambda req: f"echo {req.api_key}"))
    secret_llm(recorder, cache=False).complete("hi")
    assert_clean(path.read_text(encoding="utf-8"))
    replayed = LLM(
        "test/model",
        transport=ReplayTransport(path),
        api_key="sk-someone-else",
        api_base="https://alice:changed@llm.example.com/v1",
        extra={"extra_headers": {"Authorization": "Bearer changed", "X-Team": "blue"}, "aws_secret_access_key": "z"},
        temperature=0,
        cache=False,
    )
    assert replayed.complete("hi").text.startswith("echo ")


def test_reprs_show_no_credential():
    llm = secret_llm(ScriptedTransport(["ok"]))
    done = llm.complete("hi")
    for shown in (repr(llm), str(llm), repr(done), repr(done.request), repr(llm.request("hi"))):
        assert_clean(shown)
    assert "X-Team" in repr(llm) and "llm.example.com" in repr(done.request)


def test_a_provider_error_quoting_credentials_is_scrubbed_from_the_error_and_the_log(caplog, retry):
    def echo(req):
        return ConnectionError(f"refused {req.api_key} {req.params['extra_headers']['Authorization']} {req.api_base}")

    llm = secret_llm(ScriptedTransport(echo), retry=retry, cache=False)
    with caplog.at_level(logging.WARNING, logger="tracegrad.llm"), pytest.raises(LLMCallError) as failed:
        llm.complete("hi")
    assert "refused" in str(failed.value)
    assert_clean(str(failed.value))
    assert_clean(str(failed.value.__cause__))
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries and all(PASSWORD not in m and KEY not in m and BEARER not in m for m in retries)


def test_a_credential_from_the_environment_is_scrubbed_too(monkeypatch, retry):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-42")
    transport = ScriptedTransport([PermissionError("bad key sk-from-the-environment-42")])
    llm = LLM("test/model", transport=transport, retry=retry, cache=False)
    with pytest.raises(LLMCallError) as failed:
        llm.complete("hi")
    assert "sk-from-the-environment-42" not in str(failed.value) and "bad key" in str(failed.value)
