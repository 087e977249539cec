"""Hostile code proposed by a model, one behaviour per test: each ends as feedback within
the timeout, the run goes on, and the test process is unchanged."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
from sandbox_helpers import Episode, Snapshot, call_processes, wait_until

import tracegrad as tg

SECRET = "sk-sandbox-test-" + uuid.uuid4().hex


@pytest.fixture
def snapshot(tmp_path):
    before = Snapshot(tmp_path)
    yield before
    before.assert_unchanged()


def code(*body: str) -> str:
    return "def solve(x):\n" + "".join(f"    {line}\n" for line in body)


def test_an_endless_loop_is_stopped_at_the_timeout(make_llm, snapshot):
    run = Episode(make_llm, code("while True:", "    pass"))
    error = run.failure()
    assert error.exception.reason in ("timeout", "cpu") and run.elapsed < 3
    run.recover(error.node, "was stopped")


def test_a_sleep_of_a_million_seconds_is_stopped_at_the_timeout(make_llm, snapshot):
    run = Episode(make_llm, code("import time", "time.sleep(10**6)"))
    error = run.failure()
    assert error.exception.reason == "timeout" and run.elapsed < 3
    run.recover(error.node, "did not return within 1 s")


def test_a_10_gb_allocation_fails_with_a_memory_error(make_llm, snapshot):
    run = Episode(make_llm, code("return bytearray(10 * 2**30)"))
    error = run.failure()
    assert isinstance(error.exception, MemoryError) and "out of memory" in str(error.exception)
    run.recover(error.node, "MemoryError: out of memory")


def test_os_exit_becomes_an_error(make_llm, snapshot):
    run = Episode(make_llm, code("import os", "os._exit(3)"))
    error = run.failure()
    assert error.exception.reason == "exit" and "exit status 3" in str(error.exception)
    run.recover(error.node, "exit status 3")


def test_sys_exit_becomes_an_error(make_llm, snapshot):
    run = Episode(make_llm, code("import sys", "sys.exit(2)"))
    error = run.failure()
    assert error.exception.reason == "exit" and "sys.exit(2)" in str(error.exception)
    run.recover(error.node, "sys.exit(2)")


def test_a_fork_bomb_stops_at_the_process_limit(make_llm, snapshot):
    run = Episode(make_llm, code("import os", "while True:", "    os.fork()"))
    error = run.failure(processes=8, timeout=5)
    assert isinstance(error.exception, BlockingIOError) and run.elapsed < 5
    run.recover(error.node, "BlockingIOError")
    assert wait_until(lambda: not call_processes())  # every process of the bomb is gone


def test_a_thread_that_never_ends_goes_with_the_call(make_llm, snapshot):
    run = Episode(make_llm, code("import threading, time", "threading.Thread(target=time.sleep, args=(10**6,)).start()",
                                 "return x + 1"))  # fmt: skip
    out, error = run.call()
    assert error is None and out.data == 2 and run.elapsed < 1


def test_the_openai_api_key_cannot_be_read(make_llm, snapshot, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    snapshot.environment = dict(os.environ)
    run = Episode(make_llm, code(
        "import os",
        "seen = {'environ': os.environ.get('OPENAI_API_KEY')}",
        f"for name in ('self', os.getppid(), {os.getpid()}):",  # its own, the worker's, this process's
        "    try:",
        "        seen[name] = open(f'/proc/{name}/environ', 'rb').read().decode(errors='replace')",
        "    except OSError as exc:",
        "        seen[name] = type(exc).__name__",
        "return seen",
    ))  # fmt: skip
    out, error = run.call()
    assert error is None and out.data["environ"] is None
    assert SECRET not in str(out.data)
    run.recover(out, "environ")


def test_files_outside_the_working_directory_cannot_be_written(make_llm, snapshot, tmp_path):
    outside = [tmp_path / "escaped.txt", Path("/tmp") / f"tracegrad-escaped-{uuid.uuid4().hex}", Path.cwd() / "x.txt"]
    lines = ["open('inside.txt', 'w').write('the working directory is writable')", "failures = []"]
    for target in outside:
        lines += ["try:", f"    open({str(target)!r}, 'w').write('escaped')", "except OSError as exc:",
                  "    failures.append(type(exc).__name__)"]  # fmt: skip
    lines += ["return failures"]
    run = Episode(make_llm, code(*lines))
    out, error = run.call()
    assert error is None and len(out.data) == len(outside)  # each write failed, the one inside did not
    assert not any(target.exists() for target in outside)
    run.recover(out, "PermissionError" if "PermissionError" in out.data else "OSError")


def test_no_network_connection_can_be_opened(make_llm, snapshot):
    if not tg.sandbox_support().network:
        pytest.skip("this machine cannot give the sandbox a network of its own")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        run = Episode(make_llm, code("import socket", f"socket.create_connection(('127.0.0.1', {port}), timeout=1)",
                                     "return 'connected'"))  # fmt: skip
        error = run.failure()
        assert isinstance(error.exception, OSError)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    run.recover(error.node, "OSError")


def test_monkeypatching_a_tracegrad_class_changes_nothing_here(make_llm, snapshot):
    validate = tg.Number.validate
    run = Episode(make_llm, code("import tracegrad", "tracegrad.Number.validate = lambda self, value: value",
                                 "return x + 1"))  # fmt: skip
    out, error = run.call()
    assert error is None and out.data == 2
    assert tg.Number.validate is validate
    with pytest.raises(tg.InvalidValueError):
        tg.parameter(5.0, tg.Number(0, 1))  # validation still holds here


def test_keyboard_interrupt_raised_by_the_code_becomes_an_error(make_llm, snapshot):
    run = Episode(make_llm, code("raise KeyboardInterrupt"))
    error = run.failure()
    assert error.exception.reason == "interrupt" and "KeyboardInterrupt" in str(error.exception)
    run.recover(error.node, "KeyboardInterrupt")


def test_a_crash_of_the_process_becomes_an_error(make_llm, snapshot):
    run = Episode(make_llm, code("import ctypes", "return ctypes.string_at(0)"))
    error = run.failure()
    assert error.exception.reason == "crash" and "SIGSEGV" in str(error.exception)
    run.recover(error.node, "segmentation fault")
