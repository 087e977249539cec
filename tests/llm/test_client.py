"""The client's calls, model resolution, retries and error handling (scripted transport)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from tracegrad.llm import (
    LLM,
    Completion,
    LLMCallError,
    LLMConfigError,
    LLMError,
    RetryPolicy,
    ScriptedTransport,
)
from tracegrad.llm import config as config_module


class StatusError(Exception):
    """Looks like an HTTP error from some SDK: only a status code."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class RateLimitError(Exception):
    """Named like litellm's and openai's rate limit error."""


class AuthenticationError(Exception):
    """Named like litellm's and openai's authentication error."""


class ContextWindowExceededError(Exception):
    """Named like litellm's context window error."""


# -- model resolution ---------------------------------------------------------------


def test_model_argument_wins_over_env(monkeypatch):
    monkeypatch.setenv("TRACEGRAD_MODEL", "env/model")
    assert LLM("arg/model", transport=ScriptedTransport([])).model == "arg/model"


def test_model_from_env(monkeypatch):
    monkeypatch.setenv("TRACEGRAD_MODEL", "env/model")
    assert LLM(transport=ScriptedTransport([])).model == "env/model"


def test_missing_model_says_how_to_configure_one():
    with pytest.raises(LLMConfigError) as err:
        LLM(transport=ScriptedTransport([]))
    message = str(err.value)
    assert "TRACEGRAD_MODEL" in message and "api_base" in message and "model=" in message
    assert isinstance(err.value, LLMError)


def test_default_model_hook_is_used_when_nothing_else_is(monkeypatch):
    monkeypatch.setattr(config_module, "_default_model", lambda: "local/embedded")
    assert LLM(transport=ScriptedTransport([])).model == "local/embedded"


def test_api_base_from_env(monkeypatch):
    monkeypatch.setenv("TRACEGRAD_API_BASE", "http://127.0.0.1:9/v1")
    llm = LLM("openai/local", transport=ScriptedTransport(["x"]))
    llm.complete("hi")
    assert llm.transport.requests[0].api_base == "http://127.0.0.1:9/v1"


def test_default_transport_is_litellm_without_importing_it_eagerly():
    import sys

    had = "litellm" in sys.modules
    llm = LLM("openai/x")
    assert type(llm.transport).__name__ == "LiteLLMTransport"
    assert ("litellm" in sys.modules) == had


# -- plain calls ----------------------------------------------------------------------


def test_complete_returns_a_completion(make_llm):
    llm, t = make_llm([{"text": "hello", "prompt_tokens": 7, "completion_tokens": 2, "cost_usd": 0.5}])
    done = llm.complete("hi there")
    assert isinstance(done, Completion)
    assert (done.text, str(done), done.model) == ("hello", "hello", "test/model")
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (7, 2, 9)
    assert done.cost_usd == 0.5 and done.cached is False and done.parsed is None
    assert done.latency_s >= 0 and done.attempts == 1 and len(done.key) == 64
    assert t.requests[0].messages == [{"role": "user", "content": "hi there"}]


def test_settings_are_sent_and_calls_can_override_them(make_llm):
    llm, t = make_llm(["a", "b"], temperature=0.3, max_tokens=50, seed=1, cache=False)
    llm.complete([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
    llm.complete("u", temperature=0.9, top_p=0.5)
    assert t.requests[0].params == {"temperature": 0.3, "max_tokens": 50, "seed": 1}
    assert t.requests[1].params == {"temperature": 0.9, "max_tokens": 50, "seed": 1, "top_p": 0.5}
    assert t.requests[0].messages[0] == {"role": "system", "content": "s"}


def test_timeout_and_api_key_are_sent_but_not_part_of_the_key(make_llm):
    llm, t = make_llm(["a", "b"], api_key="sk-1", timeout=5.0)
    llm.complete("x")
    llm.complete("x", timeout=9.0, api_key="sk-2")
    first, second = t.requests
    assert (first.timeout, first.api_key, second.timeout, second.api_key) == (5.0, "sk-1", 9.0, "sk-2")
    assert first.key == second.key
    assert "sk-1" not in repr(first)


def test_with_settings_shares_the_ledger(make_llm):
    llm, t = make_llm(["a", "b"])
    hot = llm.with_settings(temperature=1.0)
    llm.complete("x")
    hot.complete("x")
    assert t.requests[1].params["temperature"] == 1.0 and "temperature" not in llm.settings
    assert llm.usage.calls == 2 and hot.usage is llm.usage


def test_bad_messages_are_refused(make_llm):
    llm, _ = make_llm(["a"])
    with pytest.raises(TypeError):
        llm.complete([{"content": "no role"}])


def test_scripted_function_sees_the_request(make_llm):
    llm, _ = make_llm(lambda req: f"echo {req.messages[-1]['content']}")
    assert llm.complete("ping").text == "echo ping"


def test_scripted_transport_running_out_is_a_clear_error(make_llm):
    llm, _ = make_llm(["only one"])
    llm.complete("a")
    with pytest.raises(LLMError, match="ran out of responses"):
        llm.complete("b")


def test_async_complete(make_llm):
    llm, t = make_llm(["one", "two"])

    async def main():
        return await asyncio.gather(llm.acomplete("a"), llm.acomplete("b"))

    results = asyncio.run(main())
    assert sorted(r.text for r in results) == ["one", "two"]
    assert llm.usage.calls == 2 and len(t.requests) == 2


# -- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        RateLimitError("slow down"),
        StatusError(429),
        StatusError(500),
        StatusError(503),
        TimeoutError("t"),
        ConnectionError("reset"),
    ],
    ids=["ratelimit-name", "429", "500", "503", "timeout", "connection"],
)
def test_transient_errors_are_retried_with_growing_waits(make_llm, sleeps, error):
    llm, t = make_llm([error, error, "ok"])
    done = llm.complete("x")
    assert done.text == "ok" and done.attempts == 3 and len(t.requests) == 3
    assert sleeps == [1.0, 2.0]
    assert llm.usage.calls == 1 and llm.usage.snapshot().failed_calls == 0


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AuthenticationError("bad key"), "auth"),
        (StatusError(401), "auth"),
        (StatusError(400), "bad_request"),
        (StatusError(404), "not_found"),
        (ContextWindowExceededError("too long"), "context_window"),
        (ValueError("bug"), "other"),
    ],
)
def test_hopeless_errors_are_not_retried(make_llm, sleeps, error, kind):
    llm, t = make_llm([error, "never reached"])
    with pytest.raises(LLMCallError) as err:
        llm.complete("x")
    assert err.value.kind == kind and not err.value.retryable and err.value.attempts == 1
    assert err.value.__cause__ is error
    assert len(t.requests) == 1 and sleeps == []
    assert llm.usage.snapshot().failed_calls == 1 and llm.usage.calls == 0


def test_retries_give_up_after_max_retries(make_llm, sleeps):
    llm, t = make_llm([StatusError(500)] * 10)
    with pytest.raises(LLMCallError) as err:
        llm.complete("x")
    assert err.value.retryable and err.value.attempts == 4 and err.value.status_code == 500
    assert len(t.requests) == 4 and sleeps == [1.0, 2.0, 4.0]


def test_backoff_is_capped_and_jittered():
    policy = RetryPolicy(initial_wait=1.0, max_wait=5.0, jitter=0.5)
    waits = [policy.wait_for(n) for n in range(1, 8)]
    assert all(0 < w <= 5.5 for w in waits)
    assert waits[0] < 1.5 and waits[-1] >= 5.0


def test_async_retries_use_the_async_sleep(make_llm, sleeps):
    llm, t = make_llm([StatusError(502), "ok"])
    done = asyncio.run(llm.acomplete("x"))
    assert done.text == "ok" and sleeps == [1.0] and len(t.requests) == 2


def test_retries_are_logged(make_llm, caplog):
    llm, _ = make_llm([StatusError(500), "ok"])
    with caplog.at_level(logging.DEBUG, logger="tracegrad.llm"):
        llm.complete("x")
    names = {r.name for r in caplog.records}
    assert names == {"tracegrad.llm"}
    assert any("retrying" in r.getMessage() for r in caplog.records)


# -- concurrency ----------------------------------------------------------------------------


def test_threads_share_one_client_safely(make_llm):
    llm, t = make_llm(lambda req: {"text": "ok", "prompt_tokens": 3, "completion_tokens": 1, "cost_usd": 0.25})

    def work():
        for _ in range(25):
            llm.complete("x")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    snap = llm.usage.snapshot()
    assert (snap.calls, snap.prompt_tokens, snap.completion_tokens) == (200, 600, 200)
    assert snap.cost_usd == pytest.approx(50.0) and len(t.requests) == 200


def test_importing_the_package_imports_neither_litellm_nor_an_optimizer():
    import subprocess
    import sys

    code = (
        "import sys, tracegrad.llm; "
        "found = [m for m in sys.modules if m == 'litellm' or m.startswith('tracegrad.optimizers')]; "
        "sys.exit(str(found) if found else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
