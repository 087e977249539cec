"""Sandboxed calls keep the semantics of a bundled call: the same node, the same
feedback, the values the code sees; what cannot cross the process boundary says so."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from sandbox_helpers import SHORT, call_processes, wait_until

import tracegrad as tg
from tracegrad.train import LocalExecutor


def trainable():
    @tg.bundle(trainable=True)
    def solve(x):
        """Add one to x."""
        return x + 1

    return solve


def ids(nodes):
    return [id(n) for n in nodes]


def test_the_users_code_runs_here_and_a_proposed_version_in_another_process():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    import os\n    return os.getpid()\n"
    assert solve(1).data != os.getpid()
    solve.parameter.data = "def solve(x):\n    return x + 1\n"  # back to the user's source: in-process
    seen = []

    @tg.bundle(trainable=True)
    def note(x):
        seen.append(x)
        return x

    assert note(3).data == 3 and seen == [3]


def test_a_sandboxed_call_records_the_same_node_and_feedback_reaches_the_code():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    return x * 10\n"
    x = tg.node(2, name="x")
    out = solve(x)
    assert out.data == 20 and ids(out.parents) == [id(x), id(solve.parameter)]
    out.backward("too large")
    assert [f.value for f in solve.parameter.feedback] == ["too large"]


def test_an_exception_in_the_code_is_an_error_node_with_the_codes_traceback():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    y = x - 1\n    return 1 / (y - y)\n"
    x = tg.node(2, name="x")
    with pytest.raises(tg.ExecutionError) as caught:
        solve(x)
    error = caught.value
    assert isinstance(error.exception, ZeroDivisionError)
    assert ids(error.node.parents) == [id(x), id(solve.parameter)]
    assert "return 1 / (y - y)" in error.node.traceback  # the line of the proposed code
    error.node.backward(str(error))
    assert "ZeroDivisionError" in solve.parameter.feedback[0].value


def test_nodes_the_code_reads_or_returns_are_inputs_of_the_call():
    scale = tg.parameter(3.0, name="scale")
    offset = tg.node(0.5, name="offset")

    @tg.bundle(trainable=True)
    def solve(x):
        return x * scale.data + offset.data

    solve.parameter.data = "def solve(x):\n    return x * scale.data + 2 * offset.data\n"
    out = solve(tg.node(2.0, name="x"))
    assert out.data == 7.0
    assert id(scale) in ids(out.parents) and id(offset) in ids(out.parents)
    solve.parameter.data = "def solve(x):\n    return scale\n"
    out = solve(tg.node(2.0, name="x"))
    assert out.data == 3.0 and id(scale) in ids(out.parents)


def test_the_code_sees_the_current_closure_and_module_values():
    factor = 2

    @tg.bundle(trainable=True)
    def solve(x):
        return x * factor

    solve.parameter.data = "def solve(x):\n    return x * factor + len(os.sep)\n"
    assert solve(1).data == 3
    factor = 10
    assert solve(1).data == 11


def test_changes_to_arguments_stay_in_the_sandbox():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    x.append(4)\n    return len(x)\n"
    items = [1, 2, 3]
    assert solve(items).data == 4 and items == [1, 2, 3]


def test_decorators_under_bundle_run_here_around_the_sandboxed_call():
    calls = []

    def count(fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args):
            calls.append(args)
            return fn(*args)

        return wrapper

    @tg.bundle(trainable=True)
    @count
    def solve(x):
        return x + 1

    solve.parameter.data = "def solve(x):\n    import os\n    return os.getpid()\n"
    assert solve(5).data != os.getpid() and calls == [(5,)]


def test_a_result_that_cannot_be_pickled_names_its_type_and_the_setting():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    return (i for i in range(x))\n"
    with pytest.raises(tg.ExecutionError) as caught:
        solve(3)
    error = caught.value.exception
    assert isinstance(error, tg.SandboxError) and error.reason == "transfer"
    assert "generator" in str(error) and "sandbox=False" in str(error)


def test_an_argument_that_cannot_be_pickled_names_it_and_the_setting():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    return 1\n"
    with pytest.raises(tg.ExecutionError) as caught:
        solve(i for i in range(3))
    error = caught.value.exception
    assert isinstance(error, tg.SandboxError) and error.reason == "transfer"
    assert "argument 1" in str(error) and "generator" in str(error) and "sandbox=False" in str(error)


def test_a_result_that_would_run_code_here_when_unpickled_is_refused(tmp_path):
    target = tmp_path / "ran-here"
    statement = f"open({str(target)!r}, 'w')"
    solve = trainable()
    solve.parameter.data = (
        "class Payload:\n"
        "    def __reduce__(self):\n"
        f"        return (exec, ({statement!r},))\n\n"
        "def solve(x):\n    return [Payload()]\n"
    )
    with pytest.raises(tg.ExecutionError) as caught:
        solve(1)
    assert caught.value.exception.reason == "transfer" and "builtins.exec" in str(caught.value.exception)
    assert not target.exists()


def test_an_exception_class_of_the_codes_own_comes_back_by_name():
    solve = trainable()
    solve.parameter.data = "class Wrong(Exception):\n    pass\n\ndef solve(x):\n    raise Wrong('no good')\n"
    with pytest.raises(tg.ExecutionError) as caught:
        solve(1)
    error = caught.value.exception
    assert isinstance(error, tg.SandboxError) and error.reason == "raised" and "Wrong: no good" in str(error)


def test_trusted_code_runs_in_process_by_the_bundle_or_by_a_block():
    seen = []

    @tg.bundle(trainable=True, sandbox=False)
    def trusted(x):
        seen.append(x)
        return x

    trusted.parameter.data = "def trusted(x):\n    seen.append(-x)\n    return x\n"
    assert trusted(1).data == 1 and seen == [-1]
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    import os\n    return os.getpid()\n"
    with tg.sandboxing(False):
        assert solve(1).data == os.getpid()
    assert solve(1).data != os.getpid()


def test_sandbox_true_and_a_sandbox_of_its_own_hold_inside_a_trusting_block():
    @tg.bundle(trainable=True, sandbox=tg.Sandbox(timeout=0.5))
    def slow(x):
        return x

    slow.parameter.data = "def slow(x):\n    import time\n    time.sleep(60)\n"
    with tg.sandboxing(False), pytest.raises(tg.ExecutionError) as caught:
        slow(1)
    assert caught.value.exception.reason == "timeout" and "0.5 s" in str(caught.value.exception)

    @tg.bundle(trainable=True, sandbox=True)
    def where(x):
        return x

    where.parameter.data = "def where(x):\n    import os\n    return os.getpid()\n"
    with tg.sandboxing(False):
        assert where(1).data != os.getpid()


async def test_an_async_proposed_version_runs_sandboxed():
    @tg.bundle(trainable=True)
    async def solve(x):
        return x + 1

    solve.parameter.data = (
        "async def solve(x):\n    import asyncio, os\n    await asyncio.sleep(0)\n    return os.getpid()\n"
    )
    out = await solve(tg.node(1))
    assert out.data != os.getpid()
    results = await asyncio.gather(*(solve(i) for i in range(3)))
    assert len({r.data for r in results}) == 3  # a process for each call


def test_calls_from_executor_threads_run_at_once_under_the_callers_settings():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    import time\n    time.sleep(0.3)\n    return x * 2\n"
    with tg.sandboxing(**SHORT), LocalExecutor(4) as pool:
        outcomes = pool.map(lambda i: solve(i).data, range(4))
    assert [o.value for o in outcomes] == [0, 2, 4, 6]
    with tg.sandboxing(timeout=0.1), LocalExecutor(2) as pool:
        outcomes = pool.map(lambda i: solve(i), range(2))
    assert all(o.error.exception.reason == "timeout" for o in outcomes)  # the block's limit, in the threads


def test_settings_are_checked():
    with pytest.raises(tg.TracegradError, match="timeout"):
        tg.Sandbox(timeout=0)
    with pytest.raises(tg.TracegradError, match="memory"):
        tg.Sandbox(memory=1.5)
    with pytest.raises(tg.TracegradError, match="sandbox="):
        tg.bundle(lambda x: x, sandbox="yes")
    with tg.sandboxing(timeout=3) as settings:
        assert settings.timeout == 3 and settings.enabled
        with tg.sandboxing(False) as inner:
            assert not inner.enabled and inner.timeout == 3


def test_support_says_what_this_machine_gives_the_sandbox():
    support = tg.sandbox_support()
    assert support.process
    assert all(isinstance(note, str) for note in support.notes)
    if not (support.network and support.read_only):
        assert support.notes  # what is missing is said


def test_an_interrupt_of_the_caller_stops_the_call_and_its_process():
    solve = trainable()
    solve.parameter.data = "def solve(x):\n    import time\n    time.sleep(10**6)\n"

    def interrupt(signum, frame):
        assert call_processes()  # the call is running
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with tg.sandboxing(timeout=30), pytest.raises(KeyboardInterrupt):
            solve(1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert wait_until(lambda: not call_processes())


def test_the_code_prints_to_its_own_output_whatever_sys_stdout_is_here():
    solve = trainable()
    solve.parameter.data = (
        "def solve(x):\n    import sys\n    print('out')\n    print('err', file=sys.stderr)\n    return x + 1\n"
    )
    assert solve(1).data == 2  # here, sys.stdout is the test's capture, which the sandboxed process has not
