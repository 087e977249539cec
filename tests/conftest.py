"""Fixtures shared by every test: nothing reaches the network or the user's cache, nothing waits."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

from tracegrad.llm import LLM, RetryPolicy, ScriptedTransport


@pytest.fixture(autouse=True)
def _isolated_env(request, tmp_path, monkeypatch):
    """Each test gets its own cache directory and no model from the environment: not
    even the embedded local model where it is installed, except in the tests of the
    ``local_model`` tier, which use it."""
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TRACEGRAD_MODEL", raising=False)
    monkeypatch.delenv("TRACEGRAD_API_BASE", raising=False)
    if request.node.get_closest_marker("local_model") is None:
        monkeypatch.setenv("TRACEGRAD_EMBEDDED_MODEL", "off")  # subprocesses inherit it


class Sleeps(list):
    """Records requested backoff delays instead of sleeping."""

    def sleep(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps) -> RetryPolicy:
    """A retry policy that records its waits (no jitter, so they are exact)."""
    return RetryPolicy(
        max_retries=3, initial_wait=1.0, max_wait=8.0, jitter=0.0, sleep=sleeps.sleep, asleep=sleeps.asleep
    )


@pytest.fixture
def make_llm(retry):
    """``make_llm(script, **kw) -> (llm, transport)`` with a scripted transport."""

    def make(script, *, structured_mode: str = "json_schema", **kw):
        transport = ScriptedTransport(script, structured_mode=structured_mode)
        kw.setdefault("retry", retry)
        return LLM(kw.pop("model", "test/model"), transport=transport, **kw), transport

    return make
