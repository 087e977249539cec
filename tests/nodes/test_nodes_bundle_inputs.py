"""The inputs of a bundled call: its arguments, what it read, its code; never what it made."""

from __future__ import annotations

import tracegrad as tg


def ids(nodes):
    return [id(n) for n in nodes]


def test_node_made_inside_a_bundle_is_not_an_input_of_its_call():
    p = tg.parameter(2.0, name="p")

    @tg.bundle
    def f(x):
        t = p + 1  # an operation on a node inside: p is read, t is made here
        return t * x

    x = tg.node(3.0, name="x")
    out = f(x)
    assert out.data == 9.0
    assert ids(out.parents) == ids([x, p])
    assert ids(out.captured) == ids([p])


def test_node_made_inside_a_failed_bundle_is_not_an_input_of_its_error():
    p = tg.parameter(2.0, name="p")

    @tg.bundle
    def f(x):
        t = p + 1
        raise ValueError(t.data)

    x = tg.node(3.0, name="x")
    try:
        f(x)
    except tg.ExecutionError as err:
        assert ids(err.node.parents) == ids([x, p])
    else:
        raise AssertionError("f did not fail")
