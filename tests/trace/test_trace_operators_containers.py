"""Traced indexing, attributes, calls, iteration, str/list/dict methods, apply and errors."""

from __future__ import annotations

import sys

import pytest

import tracegrad as tg

# -- indexing, attributes, calling, len -----------------------------------------------


def test_getitem_is_traced():
    d = tg.node({"a": 1, "b": [5, 6]})
    out = d["b"]
    assert isinstance(out, tg.OperationNode)
    assert out.data == [5, 6]
    assert out.parents == (d,)
    second = out[1]
    assert second.data == 6
    assert (tg.node("hello")[1:3]).data == "el"


def test_getitem_with_a_node_key():
    d = tg.node({"a": 1})
    k = tg.node("a")
    out = d[k]
    assert out.data == 1
    assert set(map(id, out.parents)) == {id(d), id(k)}


def test_missing_key_raises_execution_error_linked_to_inputs():
    d = tg.node({"a": 1})
    with pytest.raises(tg.ExecutionError) as info:
        d["zzz"]
    assert isinstance(info.value.node.exception, KeyError)
    assert d in info.value.node.parents


def test_getattr_is_traced():
    class Obj:
        color = "red"

    o = tg.node(Obj())
    out = o.getattr("color")
    assert isinstance(out, tg.OperationNode)
    assert out.data == "red"
    assert out.parents == (o,)
    with pytest.raises(tg.ExecutionError) as info:
        o.getattr("missing")
    assert isinstance(info.value.node.exception, AttributeError)


def test_python_attribute_access_is_not_forwarded():
    with pytest.raises(AttributeError):
        tg.node("abc").isupper  # noqa: B018  (only through getattr / data)


def test_calling_a_node_holding_a_callable():
    f = tg.node(lambda x, y=0: x * 10 + y)
    x = tg.node(2)
    out = f(x, y=3)
    assert isinstance(out, tg.OperationNode)
    assert out.data == 23
    assert set(map(id, out.parents)) == {id(f), id(x)}


def test_calling_a_non_callable_raises_execution_error():
    with pytest.raises(tg.ExecutionError) as info:
        tg.node(3)()
    assert isinstance(info.value.node.exception, TypeError)


def test_traced_len_versus_plain_len():
    n = tg.node("hello")
    traced = n.len()
    assert isinstance(traced, tg.OperationNode)
    assert traced.data == 5
    assert traced.parents == (n,)
    plain = len(n)
    assert type(plain) is int and plain == 5


def test_data_gives_the_value():
    value = {"k": [1, 2]}
    assert tg.node(value).data is value


# -- iteration --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[1, 2, 3], (4, 5), []])
def test_iterating_a_sequence_yields_traced_items(value):
    n = tg.node(value)
    items = list(n)
    assert [i.data for i in items] == list(value)
    for item in items:
        assert isinstance(item, tg.OperationNode)
        assert n in tg.trace.ancestors([item])


def test_iterating_a_dict_yields_traced_keys():
    n = tg.node({"a": 1, "b": 2})
    keys = list(n)
    assert [k.data for k in keys] == ["a", "b"]
    for k in keys:
        assert isinstance(k, tg.Node)
        assert n in tg.trace.ancestors([k])
    values = [n[k].data for k in keys]
    assert values == [1, 2]


def test_iterating_a_value_that_is_not_iterable_raises_an_execution_error():
    with pytest.raises(tg.ExecutionError) as info:
        list(tg.node(5))
    assert isinstance(info.value.exception, TypeError)


def test_unpacking_a_tuple_node():
    a, b = tg.node((1, "x"))
    assert a.data == 1
    assert b.data == "x"


# -- str / list / dict methods --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "method", "args", "kwargs"),
    [
        ("Hello {name}", "format", (), {"name": "Ann"}),
        ("{} + {}", "format", (1, 2), {}),
        (", ", "join", (["a", "b"],), {}),
        ("a b  c", "split", (), {}),
        ("a,b,c", "split", (",",), {}),
        ("a,b,c", "rsplit", (",", 1), {}),
        ("l1\nl2", "splitlines", (), {}),
        ("  pad  ", "strip", (), {}),
        ("  pad  ", "lstrip", (), {}),
        ("  pad  ", "rstrip", (), {}),
        ("MiXed", "lower", (), {}),
        ("MiXed", "upper", (), {}),
        ("two words", "title", (), {}),
        ("word", "capitalize", (), {}),
        ("aaa", "replace", ("a", "b", 2), {}),
        ("prefix", "startswith", ("pre",), {}),
        ("suffix", "endswith", ("fix",), {}),
        ("haystack", "find", ("st",), {}),
        ("prefix", "removeprefix", ("pre",), {}),
        ("suffix", "removesuffix", ("fix",), {}),
        ("42", "zfill", (5,), {}),
        ("banana", "count", ("a",), {}),
        ([1, 2, 2, 3], "count", (2,), {}),
        ((1, 2, 3), "index", (3,), {}),
        ("banana", "index", ("n",), {}),
        ({"a": 1}, "get", ("a",), {}),
        ({"a": 1}, "get", ("b", 0), {}),
    ],
)
def test_common_methods_are_traced(value, method, args, kwargs):
    n = tg.node(value)
    out = getattr(n, method)(*args, **kwargs)
    assert isinstance(out, tg.OperationNode)
    assert out.data == getattr(value, method)(*args, **kwargs)
    assert n in out.parents


def test_dict_views_are_traced():
    n = tg.node({"a": 1, "b": 2})
    assert n.keys().data == ["a", "b"]
    assert n.values().data == [1, 2]
    assert [tuple(x) for x in n.items().data] == [("a", 1), ("b", 2)]
    for out in (n.keys(), n.values(), n.items()):
        assert out.parents == (n,)


def test_method_arguments_that_are_nodes_become_parents():
    template = tg.node("{greeting}, {who}!", trainable=True)
    who = tg.node("world")
    out = template.format(greeting="Hello", who=who)
    assert out.data == "Hello, world!"
    assert set(map(id, out.parents)) == {id(template), id(who)}
    sep = tg.node(" ")
    parts = [tg.node("a"), tg.node("b")]
    joined = sep.join(parts)
    assert joined.data == "a b"
    assert set(map(id, joined.parents)) == {id(sep), *map(id, parts)}


def test_failing_method_raises_execution_error():
    with pytest.raises(tg.ExecutionError) as info:
        tg.node("abc").index("z")
    assert isinstance(info.value.node.exception, ValueError)


# -- exceptions inside operators -----------------------------------------------------------


def test_exception_in_operator_becomes_error_node_linked_to_inputs():
    a = tg.node("a")
    with pytest.raises(tg.ExecutionError) as info:
        a + 1
    err = info.value.node
    assert isinstance(err, tg.ErrorNode)
    assert err.parents == (a,)
    assert isinstance(err.exception, TypeError)


def test_exception_in_reflected_operator():
    b = tg.node("b")
    with pytest.raises(tg.ExecutionError) as info:
        1 - b
    assert info.value.node.parents == (b,)


def test_exception_in_unary_operator():
    s = tg.node("s")
    with pytest.raises(tg.ExecutionError) as info:
        -s  # noqa: B018
    assert info.value.node.parents == (s,)


def test_error_node_backward_reaches_parameters():
    p = tg.node(0, trainable=True)
    with pytest.raises(tg.ExecutionError) as info:
        10 / (p * 2)
    info.value.node.backward("division by zero: p must not be 0")
    assert [f.value for f in p.feedback] == ["division by zero: p must not be 0"]


# -- apply -------------------------------------------------------------------------------------


def test_apply_records_a_plain_function_call():
    def combine(x, y, sep="-"):
        """Join two things."""
        return f"{x}{sep}{y}"

    a, b = tg.node("a"), tg.node("b")
    out = tg.apply(combine, a, b, sep="+")
    assert isinstance(out, tg.OperationNode)
    assert out.data == "a+b"
    assert set(map(id, out.parents)) == {id(a), id(b)}
    assert out.operator.name == "combine"
    assert out.description == "Join two things."
    assert a in out.inputs.values()
    assert out.inputs["sep"] == "+"


def test_apply_with_nodes_inside_containers():
    a, b = tg.node(1), tg.node(2)
    out = tg.apply(sum, [a, b, 3])
    assert out.data == 6
    assert set(map(id, out.parents)) == {id(a), id(b)}


def test_apply_exception_becomes_error_node():
    a = tg.node(0)
    with pytest.raises(tg.ExecutionError) as info:
        tg.apply(lambda x: 1 / x, a)
    assert info.value.node.parents == (a,)


def test_apply_of_a_function_returning_a_node_stores_its_value():
    inner = tg.node(3)
    out = tg.apply(lambda: inner)
    assert out.data == 3
    assert not isinstance(out.data, tg.Node)
    with tg.no_trace():
        assert tg.apply(lambda: inner).data == 3


def test_calling_a_node_holding_a_bundle_gives_a_plain_value():
    @tg.bundle()
    def double(x):
        return x * 2

    f = tg.node(double)
    out = f(4)
    assert out.data == 8
    assert not isinstance(out.data, tg.Node)


def test_operations_do_not_hit_the_recursion_limit_on_deep_chains():
    x = tg.node(0)
    for _ in range(sys.getrecursionlimit() * 3):
        x = x + 1
    assert x.data == sys.getrecursionlimit() * 3


def test_rounding_and_divmod_are_traced():
    import math

    x = tg.node(7.6, name="x")
    for result, expected in ((round(x), 8), (round(x, 0), 8.0), (math.floor(x), 7), (math.ceil(x), 8)):
        assert isinstance(result, tg.Node)
        assert result.data == expected
        assert result.parents == (x,)
    q = divmod(tg.node(7), 2)
    assert q.data == (3, 1)


def test_numeric_conversions_give_plain_values():
    x = tg.node(2.5)
    assert float(x) == 2.5 and int(x) == 2 and complex(x) == 2.5 + 0j


def test_iterating_over_a_string_node_yields_traced_characters():
    chars = list(tg.node("ab"))
    assert [c.data for c in chars] == ["a", "b"]
    assert all(isinstance(c, tg.OperationNode) for c in chars)
