"""The engine's public surface for the layers above: value, names, feedback, assign."""

from __future__ import annotations

import pytest

import tracegrad as tg
from tracegrad import trace


def test_value_does_not_record_a_read_inside_a_bundle():
    secret = tg.node("s", name="secret")
    seen = []

    @tg.bundle()
    def peek(x):
        seen.append(secret.value)
        return x

    out = peek(tg.node("a"))
    assert seen == ["s"]
    assert all(p is not secret for p in out.parents)


def test_data_still_records_a_read():
    secret = tg.node("s", name="secret")

    @tg.bundle()
    def peek(x):
        return x + secret.data

    assert any(p is secret for p in peek(tg.node("a")).parents)


def test_value_is_read_only():
    n = tg.node(1)
    with pytest.raises(AttributeError):
        n.value = 2  # type: ignore[misc]


def test_given_name_and_name_setter():
    n = tg.node(1)
    assert n.given_name is None
    assert n.name.startswith("int_")
    n.name = "count"
    assert n.given_name == n.name == "count"
    assert tg.node(1, name="x").given_name == "x"
    p = tg.parameter("t")
    assert p.given_name is None and p.name.startswith("param_")


@pytest.mark.parametrize(("bad", "error"), [(None, TypeError), (3, TypeError), ("", ValueError)])
def test_name_setter_refuses_non_names(bad, error):
    n = tg.node(1, name="kept")
    with pytest.raises(error, match="name"):
        n.name = bad
    assert n.given_name == "kept"


def test_has_feedback_and_clear_feedback_of_one_node():
    p = tg.parameter(1.0, name="p")
    out = p + 1
    assert not p.has_feedback and not out.has_feedback
    out.backward("more")
    assert p.has_feedback and out.has_feedback
    out.clear_feedback()
    assert not out.has_feedback
    assert p.has_feedback  # only that node
    out.backward("again")
    out.zero_feedback()  # upstream too
    assert not p.has_feedback and not out.has_feedback


def test_assign_validates_then_assigns_all():
    a = tg.parameter(1.0, name="a")
    b = tg.parameter("x", name="b")
    triples = trace.assign({a: "2.5", b: "y"})
    assert triples == [(a, 1.0, 2.5), (b, "x", "y")]
    assert a.value == 2.5 and b.value == "y"


def test_assign_is_all_or_nothing():
    a = tg.parameter(1.0, name="a")
    b = tg.parameter(1, "integer", name="b")
    with pytest.raises(tg.InvalidValueError) as info:
        trace.assign({a: 2.0, b: "not a number"})
    assert info.value.parameter_name == "b"
    assert "b" in str(info.value)
    assert a.value == 1.0 and b.value == 1


def test_update_stays_a_single_validated_assignment():
    p = tg.parameter(1, "integer", name="n")
    assert p.update("3") == 3
    with pytest.raises(tg.InvalidValueError):
        p.update("x")
    assert p.value == 3


def test_exports():
    for name in (
        "assign", "ancestors", "iter_nodes", "resolve", "no_trace", "unique_names", "call_expression",
        "node_type", "subgraph", "Subgraph", "running_bundle", "current_reads",
    ):  # fmt: skip
        assert hasattr(trace, name), name
        assert name in trace.__all__, name


def test_operation_node_accessors():
    a = tg.node(2, name="a")
    out = a + 3
    assert out.operator.name == "add"
    assert out.args == (a, 3)
    assert out.kwargs == {}
    assert out.captured == ()
    assert out.parents == (a,)
    assert out.serial > a.serial
