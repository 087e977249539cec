"""Trainable bundles: the function's source is a code parameter; new code runs, errors reach it."""

from __future__ import annotations

import asyncio

import pytest

import tracegrad as tg


def ids(nodes):
    return [id(n) for n in nodes]


def values(node):
    return [f.value for f in node.feedback]


# -- trainable code -----------------------------------------------------------------------------------


def test_trainable_bundle_has_a_code_parameter():
    @tg.bundle(trainable=True)
    def solve(x):
        """Solve it."""
        return x + 1

    param = solve.parameter
    assert isinstance(param, tg.ParameterNode)
    assert param.kind.name == "code"
    assert "def solve(x):" in param.data
    assert "return x + 1" in param.data
    assert "@tg.bundle" not in param.data
    assert "solve" in param.name


def test_non_trainable_bundle_has_no_code_parameter():
    @tg.bundle()
    def f(x):
        return x

    assert f.parameter is None


def test_later_calls_run_the_current_code_and_depend_on_it():
    @tg.bundle(trainable=True)
    def solve(x):
        return x + 1

    assert solve(1).data == 2
    solve.parameter.data = "def solve(x):\n    return x * 100\n"
    out = solve(tg.node(2))
    assert out.data == 200
    assert id(solve.parameter) in ids(out.parents)
    out.backward("wrong")
    assert values(solve.parameter) == ["wrong"]
    solve.parameter.data = "def solve(x):\n    return x + 1\n"
    assert solve(1).data == 2


def test_new_code_sees_globals_and_closure_variables():
    factor = 3

    @tg.bundle(trainable=True)
    def scale(x):
        return x * factor

    scale.parameter.data = (
        "def scale(x):\n"
        "    assert not asyncio.iscoroutine(x)  # a global of the module\n"
        "    return x * factor + 1  # a closure variable\n"
    )
    assert scale(2).data == 7


def test_new_code_sees_the_current_closure_and_global_values():
    offset = 1

    @tg.bundle(trainable=True)
    def shift(x):
        return x + offset

    shift.parameter.data = "def shift(x):\n    return x + offset + 0\n"
    assert shift(0).data == 1
    offset = 5
    assert shift(0).data == 5


def test_new_code_may_define_helpers():
    @tg.bundle(trainable=True)
    def solve(x):
        return x

    solve.parameter.data = (
        "import math\n\ndef helper(v):\n    return math.sqrt(v)\n\ndef solve(x):\n    return helper(x)\n"
    )
    assert solve(16).data == 4.0


@pytest.mark.parametrize(
    "bad",
    [
        "def solve(x, y):\n    return x\n",  # another signature
        "def solve(y):\n    return y\n",  # renamed parameter
        "def other(x):\n    return x\n",  # another name
        "def solve(x):\n    return x +\n",  # does not parse
        "",
    ],
)
def test_code_with_another_signature_or_name_is_rejected(bad):
    @tg.bundle(trainable=True)
    def solve(x):
        return x + 1

    old = solve.parameter.data
    with pytest.raises(tg.InvalidValueError):
        solve.parameter.data = bad
    with pytest.raises(tg.InvalidValueError):
        solve.parameter.update(bad)
    assert solve.parameter.data == old
    assert solve(1).data == 2


def test_async_code_for_a_sync_bundle_is_rejected():
    @tg.bundle(trainable=True)
    def solve(x):
        return x + 1

    with pytest.raises(tg.InvalidValueError):
        solve.parameter.data = "async def solve(x):\n    return x + 1\n"

    @tg.bundle(trainable=True)
    async def fetch(x):
        return x

    with pytest.raises(tg.InvalidValueError):
        fetch.parameter.data = "def fetch(x):\n    return x\n"


def test_compile_time_syntax_error_becomes_an_error_node_reaching_the_code():
    @tg.bundle(trainable=True)
    def solve(x):
        return x + 1

    arg = tg.node(1, trainable=True)
    # parses, but fails to compile: nonlocal without a binding
    solve.parameter.data = "def solve(x):\n    nonlocal y\n    return x\n"
    with pytest.raises(tg.ExecutionError) as info:
        solve(arg)
    node = info.value.node
    assert isinstance(node, tg.ErrorNode)
    assert isinstance(node.exception, SyntaxError)
    assert "nonlocal" in node.traceback
    assert id(solve.parameter) in ids(node.parents)
    assert id(arg) in ids(node.parents)
    node.backward("fix the syntax")
    assert values(solve.parameter) == ["fix the syntax"]
    assert values(arg) == ["fix the syntax"]
    # fixed code runs again
    solve.parameter.data = "def solve(x):\n    return x - 1\n"
    assert solve(arg).data == 0


def test_runtime_error_in_new_code_reaches_the_code_parameter():
    @tg.bundle(trainable=True)
    def solve(x):
        return x + 1

    solve.parameter.data = "def solve(x):\n    return undefined_name + x  # the bad line\n"
    with pytest.raises(tg.ExecutionError) as info:
        solve(1)
    node = info.value.node
    assert isinstance(node.exception, NameError)
    assert "the bad line" in node.traceback
    node.backward("NameError")
    assert values(solve.parameter) == ["NameError"]


async def test_trainable_async_bundle():
    @tg.bundle(trainable=True)
    async def fetch(x):
        await asyncio.sleep(0)
        return x + 1

    assert (await fetch(1)).data == 2
    fetch.parameter.data = "async def fetch(x):\n    await asyncio.sleep(0)\n    return x * 10\n"
    out = await fetch(2)
    assert out.data == 20
    assert id(fetch.parameter) in ids(out.parents)


class Solver(tg.Module):
    def __init__(self, bias):
        self.bias = bias

    @tg.bundle(trainable=True)
    def solve(self, x):
        """Solve with a bias."""
        return x + self.bias


def test_trainable_method_has_one_code_parameter_per_instance():
    a, b = Solver(1), Solver(2)
    assert a.solve.parameter is a.solve.parameter
    assert a.solve.parameter is not b.solve.parameter
    assert a.solve.parameter.data == b.solve.parameter.data
    a.solve.parameter.data = "def solve(self, x):\n    return x * self.bias * 100\n"
    assert a.solve(3).data == 300
    assert b.solve(3).data == 5
    out = a.solve(3)
    assert id(a.solve.parameter) in ids(out.parents)
    assert id(b.solve.parameter) not in ids(out.parents)
    out.backward("fb")
    assert values(a.solve.parameter) == ["fb"]
    assert values(b.solve.parameter) == []


def test_trainable_method_rejects_another_signature():
    s = Solver(1)
    with pytest.raises(tg.InvalidValueError):
        s.solve.parameter.data = "def solve(x):\n    return x\n"


def test_nested_trainable_bundle_code_is_an_input_of_the_outer():
    @tg.bundle(trainable=True)
    def inner(x):
        return x + 1

    @tg.bundle()
    def outer(x):
        return inner(x) * 2

    out = outer(tg.node(1))
    assert out.data == 4
    out.backward("fb")
    assert values(inner.parameter) == ["fb"]


def test_traceback_shows_the_lines_of_the_code_that_failed():
    a, b = Solver(1), Solver(2)
    a.solve.parameter.data = "def solve(self, x):\n    return x / 0  # version A\n"
    b.solve.parameter.data = "def solve(self, x):\n    return x / 0  # version B\n"
    for solver, tag in ((a, "version A"), (b, "version B"), (a, "version A")):
        with pytest.raises(tg.ExecutionError) as info:
            solver.solve(1)
        assert tag in info.value.node.traceback
