"""Node types: plain values, parameters, operation results and error nodes; their names."""

from __future__ import annotations

import pytest

import tracegrad as tg


class Opaque:
    """An arbitrary user object (no special protocol)."""


@pytest.mark.parametrize("value", [1, 2.5, "text", None, [1, 2], {"a": 1}, (1,), Opaque(), print])
def test_plain_node_wraps_any_value(value):
    n = tg.node(value)
    assert isinstance(n, tg.Node)
    assert not isinstance(n, tg.ParameterNode)
    assert n.data is value
    assert not n.trainable
    assert n.is_leaf
    assert n.parents == ()


def test_node_of_a_node_is_the_same_node():
    n = tg.node(3)
    assert tg.node(n) is n


def test_making_a_parameter_of_a_plain_node_is_refused():
    n = tg.node(3)
    with pytest.raises(ValueError):
        tg.node(n, trainable=True)


def test_node_constructor_refuses_a_node_value():
    with pytest.raises(TypeError):
        tg.Node(tg.node(1))


def test_parameter_node_is_trainable_with_kind_name_and_description():
    p = tg.node("Answer: {q}", trainable=True, name="prompt", description="the prompt")
    assert isinstance(p, tg.ParameterNode)
    assert p.trainable
    assert p.name == "prompt"
    assert p.description == "the prompt"
    assert p.kind.name == "text"
    assert p.data == "Answer: {q}"


def test_parameter_shorthand():
    p = tg.parameter(0.5, "number", name="t")
    assert isinstance(p, tg.ParameterNode)
    assert p.kind.name == "number"
    assert p.name == "t"


def test_operation_node_knows_operator_inputs_and_description():
    a = tg.node(2, name="a")
    b = tg.node(3, name="b")
    c = a + b
    assert isinstance(c, tg.OperationNode)
    assert c.data == 5
    assert callable(c.operator.fn)
    assert c.operator.fn(2, 3) == 5
    assert c.operator.name == "add"
    assert list(c.inputs) == ["a", "b"]
    assert c.inputs["a"] is a
    assert c.inputs["b"] is b
    assert set(map(id, c.parents)) == {id(a), id(b)}
    assert c.description  # a readable description of the operation
    assert not c.is_leaf


def test_operation_with_a_constant_has_only_node_parents():
    a = tg.node(2)
    c = a * 10
    assert c.parents == (a,)
    assert c.inputs["a"] is a
    assert c.inputs["b"] == 10


def test_bundle_description_is_the_docstring():
    @tg.bundle()
    def greet(name):
        """Say hello to someone."""
        return f"hello {name}"

    out = greet(tg.node("bob"))
    assert out.description == "Say hello to someone."
    assert out.operator.fn("x") == "hello x"


def test_error_node_holds_exception_and_traceback():
    a = tg.node("a")
    with pytest.raises(tg.ExecutionError) as info:
        a + 1
    err = info.value
    node = err.node
    assert isinstance(node, tg.ErrorNode)
    assert isinstance(node.exception, TypeError)
    assert err.exception is node.exception
    assert node.data is node.exception
    assert "TypeError" in node.traceback
    assert "Traceback" in node.traceback
    assert node.parents == (a,)
    assert node.inputs["a"] is a
    assert "TypeError" in str(err)


def test_execution_error_is_a_tracegrad_error_not_the_original_type():
    with pytest.raises(tg.TracegradError) as info:
        tg.node(1) / 0
    assert isinstance(info.value.node.exception, ZeroDivisionError)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# -- names ----------------------------------------------------------------------------


def test_auto_names_contain_the_serial_and_are_unique():
    nodes = [tg.node(1), tg.node(1), tg.node("x"), tg.node(1.0, trainable=True)]
    nodes.append(nodes[0] + nodes[1])
    names = [n.name for n in nodes]
    assert len(set(names)) == len(names)
    for n in nodes:
        assert str(n.serial) in n.name


def test_auto_names_are_readable():
    a = tg.node(1)
    assert a.name.startswith("int")
    s = a + 1
    assert s.name.startswith("add")
    p = tg.node("x", trainable=True)
    assert p.name.startswith("param")


def test_error_node_auto_name_mentions_error():
    with pytest.raises(tg.ExecutionError) as info:
        tg.node(1) / 0
    assert "error" in info.value.node.name
    assert str(info.value.node.serial) in info.value.node.name


def test_user_given_names_are_kept_even_when_they_clash():
    a = tg.node(1, name="x")
    b = tg.node(2, name="x")
    assert a.name == b.name == "x"


def test_subgraph_names_disambiguate_clashing_user_names():
    p = tg.node(1, trainable=True, name="x")
    q = tg.node(2, name="x")
    out = p + q
    out.backward("more")
    sg = tg.subgraph([p])
    names = [sg.names[n] for n in sg.nodes]
    assert len(set(names)) == len(names) == 3
    assert all("x" in sg.names[n] for n in (p, q))


def test_serials_grow_with_creation():
    a = tg.node(1)
    b = a + 1
    c = b * 2
    assert a.serial < b.serial < c.serial


def test_repr_is_readable():
    n = tg.node(42, name="answer")
    assert "answer" in repr(n)
    assert "42" in repr(n)
