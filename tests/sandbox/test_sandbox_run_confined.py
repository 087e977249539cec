"""``run_confined``: any module-level function, run in a confined process of the worker."""

from __future__ import annotations

import os
import time

import pytest
from sandbox_helpers import wait_until

from tracegrad.sandbox import Sandbox, SandboxError, run_confined

QUICK = Sandbox(timeout=2)


def where(payload: bytes) -> tuple:
    return (os.getpid(), os.getuid(), os.getcwd()), None, {"size": len(payload)}


def fails(payload: bytes) -> tuple:
    return None, ValueError(payload.decode()), {"noted": True}


def hangs(payload: bytes) -> tuple:
    time.sleep(10**6)
    return None, None, None


def test_the_entry_point_runs_in_another_process_in_a_directory_of_its_own():
    reply = run_confined(where, b"abc", QUICK, label="where()")
    pid, uid, cwd = reply.value
    assert reply.error is None and reply.extra == {"size": 3}
    assert pid != os.getpid() and cwd != os.getcwd()
    if os.geteuid() == 0:
        assert uid != 0  # root's calls run as an unprivileged user
    assert wait_until(lambda: not os.path.exists(cwd))  # removed once the call's process has ended


def test_an_error_the_entry_point_returns_comes_back_with_its_extra_data():
    reply = run_confined(fails, b"no good", QUICK, label="fails()")
    assert isinstance(reply.error, ValueError) and str(reply.error) == "no good"
    assert reply.extra == {"noted": True}


def test_a_hung_entry_point_ends_at_the_timeout():
    start = time.monotonic()
    reply = run_confined(hangs, b"", Sandbox(timeout=0.5), label="hangs()")
    assert isinstance(reply.error, SandboxError) and reply.error.reason == "timeout"
    assert "hangs() did not return within 0.5 s" in str(reply.error)
    assert time.monotonic() - start < 3


def test_the_entry_point_is_a_module_level_function():
    with pytest.raises(TypeError, match="module-level"):
        run_confined(lambda payload: (None, None, None), b"", QUICK, label="lambda")
