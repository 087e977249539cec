"""The embedded model for real: small optimizations end better than they started, the
server starts, answers and leaves no process behind, a timeout stops a request.

These tests run llama.cpp on the CPU (tens of seconds each on two cores). They are
skipped where ``tracegrad[local]`` is not installed, except under ``.ci/run``, which
sets ``TRACEGRAD_REQUIRE_LOCAL_MODEL=1`` so that a missing model fails instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

import tracegrad as tg
from tracegrad.llm import LLMCallError
from tracegrad.llm.local import DEFAULT_NAME, LocalServer, available, llama_available

if not (llama_available() and available()) and not os.environ.get("TRACEGRAD_REQUIRE_LOCAL_MODEL"):
    pytest.skip("the embedded model is not installed (make local)", allow_module_level=True)

pytestmark = [pytest.mark.local_model, pytest.mark.slow]


def _llm(**kw):
    return tg.LLM(temperature=0, seed=0, **kw)


def test_the_default_client_is_the_embedded_model():
    assert tg.LLM().model == DEFAULT_NAME


def test_a_number_is_tuned_from_text_feedback():
    x = tg.node(3.0, trainable=True, name="x", kind=tg.Number(low=0, high=20))

    @tg.bundle()
    def square(v):
        """Return v squared."""
        return v * v

    opt = tg.OptoPrime([x], llm=_llm())
    errors = []
    for _ in range(4):
        out = square(x)
        errors.append(abs(out.data - 49))
        if errors[-1] == 0:
            break
        opt.zero_feedback()
        out.backward(f"The output is {out.data}; it should be 49.")
        report = opt.step()
        assert report.calls >= 1 and report.prompt_tokens > 0 and report.seconds > 0
    assert errors[-1] < errors[0]


def test_code_is_repaired_from_failing_tests():
    @tg.bundle(trainable=True)
    def is_even(n):
        """Return True when n is even."""
        return n % 2 == 1

    cases = {2: True, 3: False, 10: True, 7: False}
    opt = tg.OptoPrime(is_even.parameters(), llm=_llm())

    def failures():
        outs = {n: is_even(n) for n in cases}
        return outs, [n for n, out in outs.items() if out.data != cases[n]]

    start = len(failures()[1])
    reports = []
    for _ in range(3):
        outs, failed = failures()
        if not failed:
            break
        opt.zero_feedback()
        for n in failed:
            outs[n].backward(f"is_even({n}) returned {outs[n].data}, expected {cases[n]}")
        reports.append(opt.step())
    assert len(failures()[1]) < start, "\n".join(r.summary() + "\n" + r.reply for r in reports)


def test_a_request_past_its_timeout_is_stopped_and_the_model_still_answers():
    llm = _llm(max_tokens=400, timeout=0.5)
    with pytest.raises(LLMCallError) as err:
        llm.complete("Count from 1 to 200, one number per line.", cache=False)
    assert err.value.kind == "timeout" and not err.value.retryable and err.value.attempts == 1
    assert _llm(max_tokens=5).complete("Say OK.", cache=False).text


def test_calls_from_several_threads_take_turns():
    llm = _llm(max_tokens=8)
    texts: list[str] = []

    def ask(i: int) -> None:
        texts.append(llm.complete(f"Reply with the number {i}.", cache=False).text)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(texts) == 3 and all(texts)


async def test_async_calls_are_served():
    done = await _llm(max_tokens=8).acomplete("Say hi.", cache=False)
    assert done.text and done.usage.calls == 1


def test_the_server_starts_answers_and_leaves_no_process_behind():
    from pydantic import BaseModel

    class Pick(BaseModel):
        x: int

    with LocalServer() as server:
        pid = server.process.pid
        done = server.llm(temperature=0, max_tokens=20).complete("Give x=3 as JSON.", schema=Pick)
        assert done.parsed == Pick(x=3)
        assert done.cost_usd == 0.0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


_BUSY_PARENT = """
from pydantic import BaseModel, Field
from tracegrad.llm.local import LocalServer
class Story(BaseModel):
    text: str = Field(min_length=6000)  # the grammar keeps the server decoding for minutes
with LocalServer() as server:
    print(server.process.pid, flush=True)
    server.llm(temperature=0, max_tokens=3000).complete("Write a long story.", schema=Story)
"""


def _state(pid: int) -> tuple[str, int]:
    """A process's state letter and its CPU ticks so far (("gone", 0) once reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return "gone", 0
    return fields[0], int(fields[11]) + int(fields[12])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_server_decoding_a_long_reply_dies_at_once_with_its_killed_parent():
    parent = subprocess.Popen([sys.executable, "-c", _BUSY_PARENT], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        second, start, deadline = os.sysconf("SC_CLK_TCK"), _state(pid)[1], time.monotonic() + 120
        while _state(pid)[1] - start < second and time.monotonic() < deadline:  # an idle server spends no CPU
            time.sleep(0.2)
        assert _state(pid)[1] - start >= second  # a CPU-second spent: it is working on the long reply
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _state(pid)[0] not in ("gone", "Z") and time.monotonic() < deadline:  # a zombie is dead
        time.sleep(0.1)
    assert _state(pid)[0] in ("gone", "Z")
