"""Deeply nested arguments: a clear error from tracegrad, never its RecursionError."""

from __future__ import annotations

import pytest

import tracegrad as tg
from tracegrad.trace import resolve, unique_nodes


def nested(value, depth: int):
    for _ in range(depth):
        value = [value]
    return value


@tg.bundle
def first_leaf(v):
    """The innermost item of a nested list."""
    while isinstance(v, list):
        v = v[0]
    return v


def test_moderately_nested_arguments_are_traced():
    x = tg.node(7)
    out = first_leaf(nested(x, 100))
    assert out.value == 7 and list(out.parents) == [x]


@pytest.mark.parametrize("with_node", [True, False], ids=["holding a node", "plain"])
def test_arguments_nested_600_deep_give_a_clear_error(with_node):
    leaf = tg.node(7) if with_node else 7
    with pytest.raises(tg.ExecutionError) as failed:
        first_leaf(nested(leaf, 600))
    assert isinstance(failed.value.exception, tg.TracegradError)
    assert "nested too deeply" in str(failed.value.exception)


def test_the_walks_themselves_raise_the_clear_error():
    deep = nested(tg.node(1), 3000)
    with pytest.raises(tg.TracegradError, match="nested too deeply"):
        unique_nodes(deep)
    with pytest.raises(tg.TracegradError, match="nested too deeply"):
        resolve(deep)


def test_a_recursion_error_of_the_function_itself_stays_its_own():
    def recurse(n):
        return recurse(n + 1)

    @tg.bundle
    def runaway(n):
        return recurse(n)

    with pytest.raises(tg.ExecutionError) as failed:
        runaway(tg.node(0))
    assert type(failed.value.exception) is RecursionError
