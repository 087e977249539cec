"""The real litellm path, offline: litellm's ``mock_response`` and a local
OpenAI-compatible HTTP server on 127.0.0.1 (which is also the local-server backend)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel

from tracegrad.llm import LLM, LiteLLMTransport, LLMCallError, ReplayTransport

# -- litellm's own mock ---------------------------------------------------------------------


def test_mock_response_goes_through_litellm(retry):
    llm = LLM("gpt-4o-mini", extra={"mock_response": "mocked!"}, retry=retry, cache=False)
    done = llm.complete("hi")
    assert done.text == "mocked!" and not done.cached
    assert done.usage.total_tokens > 0 and done.cost_usd is not None and done.cost_usd > 0
    assert done.raw["choices"][0]["message"]["content"] == "mocked!"
    assert llm.usage.cost_usd == pytest.approx(done.cost_usd)


def test_mock_response_async(retry):
    llm = LLM("gpt-4o-mini", extra={"mock_response": "async mocked"}, retry=retry)
    assert asyncio.run(llm.acomplete("hi")).text == "async mocked"


def test_litellm_reports_structured_support():
    t = LiteLLMTransport()
    assert t.structured_mode("gpt-4o-mini", None) == "json_schema"
    assert t.structured_mode("openai/some-local-model", "http://127.0.0.1:1/v1") == "json_object"


# -- a local OpenAI-compatible server ------------------------------------------------------------


class Stub:
    """Scripted replies of a fake ``/v1/chat/completions``: (status, body, delay, headers)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, object, float, dict]] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def push(self, status=200, body=None, delay=0.0, headers=None):
        self.script.append((status, body, delay, headers or {}))

    def ok(self, content="hello from stub", prompt=11, completion=3, delay=0.0):
        self.push(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "stub-model",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
            delay,
        )

    def error(self, status, message="error", headers=None):
        self.push(status, {"error": {"message": message, "type": "test_error", "code": status}}, headers=headers)


@pytest.fixture(scope="module")
def _server():
    holder: dict[str, Stub] = {"state": Stub()}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            state = holder["state"]
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, reply, delay, headers = state.script.pop(0) if state.script else (500, {"error": {}}, 0, {})
            time.sleep(delay)
            data = json.dumps(reply).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    holder["base"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield holder
    server.shutdown()
    server.server_close()


@pytest.fixture
def stub(_server):
    """A fresh script and request log on the shared local server."""
    state = Stub()
    state.base = _server["base"]
    _server["state"] = state
    return state


def local(stub, retry, **kw):
    return LLM("openai/stub-model", api_base=stub.base, api_key="sk-local", retry=retry, **kw)


def test_local_server_call(stub, retry):
    stub.ok("hi there", prompt=11, completion=3)
    llm = local(stub, retry, temperature=0.2, seed=7, max_tokens=20, cache=False)
    done = llm.complete([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}])
    assert done.text == "hi there" and done.finish_reason == "stop"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (11, 3)
    assert done.cost_usd is None  # a local model has no known price
    sent = stub.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-local"
    assert sent["body"]["model"] == "stub-model" and sent["body"]["temperature"] == 0.2
    assert sent["body"]["seed"] == 7 and sent["body"]["max_tokens"] == 20
    assert sent["body"]["messages"][0] == {"role": "system", "content": "be brief"}


def test_local_server_async(stub, retry):
    stub.ok("async hi")
    assert asyncio.run(local(stub, retry).acomplete("x")).text == "async hi"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_http_errors_are_retried(stub, retry, sleeps, status):
    stub.error(status, "try later")
    stub.ok("recovered")
    done = local(stub, retry).complete("x")
    assert done.text == "recovered" and done.attempts == 2 and len(stub.requests) == 2
    assert sleeps == [1.0]


def test_retry_after_header_is_honoured(stub, retry, sleeps):
    stub.error(429, "slow down", headers={"Retry-After": "3"})
    stub.ok()
    local(stub, retry).complete("x")
    assert sleeps == [3.0]


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (400, "bad_request"), (404, "not_found")])
def test_hopeless_http_errors_are_not_retried(stub, retry, sleeps, status, kind):
    stub.error(status, "nope")
    stub.ok("never")
    with pytest.raises(LLMCallError) as err:
        local(stub, retry).complete("x")
    assert err.value.kind == kind and err.value.status_code == status and not err.value.retryable
    assert len(stub.requests) == 1 and sleeps == []


def test_async_retry_against_the_server(stub, retry, sleeps):
    stub.error(500)
    stub.ok("fine")
    assert asyncio.run(local(stub, retry).acomplete("x")).text == "fine" and len(stub.requests) == 2


def test_per_call_timeout_is_retried(stub, retry, sleeps):
    stub.ok("too late", delay=0.8)
    stub.ok("on time")
    done = local(stub, retry, timeout=0.3).complete("x")
    assert done.text == "on time" and done.attempts == 2 and len(sleeps) == 1


class Verdict(BaseModel):
    label: str
    score: float


def test_structured_output_against_a_local_server(stub, retry):
    stub.ok('Sure:\n```json\n{"label": "good", "score": 0.5,}\n```')
    done = local(stub, retry).complete("Rate it", schema=Verdict)
    assert done.parsed == Verdict(label="good", score=0.5)
    body = stub.requests[0]["body"]
    assert body["response_format"] == {"type": "json_object"} and "JSON" in body["messages"][-1]["content"]


def test_server_refusing_json_mode_falls_back_to_text(stub, retry):
    stub.error(400, "response_format is not supported")
    stub.ok('{"label": "ok", "score": 1}')
    done = local(stub, retry).complete("Rate it", schema=Verdict)
    assert done.parsed.label == "ok"
    assert "response_format" not in stub.requests[1]["body"]


def test_cache_and_replay_over_the_real_transport(stub, retry, tmp_path):
    stub.ok("recorded answer")
    path = tmp_path / "replay.jsonl"
    recorder = LLM(
        "openai/stub-model",
        api_base=stub.base,
        api_key="k",
        retry=retry,
        temperature=0,
        transport=ReplayTransport(path, record_from=LiteLLMTransport()),
        cache=False,
    )
    assert recorder.complete("q").text == "recorded answer"
    replay = LLM(
        "openai/stub-model",
        api_base=stub.base,
        retry=retry,
        temperature=0,
        transport=ReplayTransport(path),
        cache=False,
    )
    assert replay.complete("q").text == "recorded answer" and len(stub.requests) == 1
    with pytest.raises(LLMCallError) as err:
        replay.complete("another question")
    assert err.value.kind == "replay_miss"


def test_the_model_tokenizer_never_reaches_the_network(tmp_path):
    code = textwrap.dedent(
        """
        import os, socket
        os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
        def refuse(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from tracegrad.llm import LLM
        llm = LLM("openai/gpt-4o-mini")
        tokens, approximate = llm.count_tokens("hello world")
        assert tokens > 0 and not approximate
        assert llm.estimate_cost("hello world", 10).cost_usd > 0
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "network access attempted" not in result.stderr
