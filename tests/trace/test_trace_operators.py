"""Operators traced on nodes: a node behaves like its value, and operations are recorded."""

from __future__ import annotations

import operator
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg

INT_BINARY = [
    operator.add, operator.sub, operator.mul, operator.floordiv, operator.mod,
    operator.and_, operator.or_, operator.xor, operator.truediv,
]  # fmt: skip
FLOAT_BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod]
COMPARE = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]
UNARY = [operator.neg, operator.pos, abs, operator.invert]

small_ints = st.integers(min_value=-(10**6), max_value=10**6)
finite_floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


def outcome(fn, *args):
    """The value of fn(*args), or the type of the exception it raises."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", type(exc))


def traced_outcome(fn, *args):
    try:
        result = fn(*args)
    except tg.ExecutionError as err:
        assert isinstance(err.node, tg.ErrorNode)
        return ("error", type(err.node.exception))
    assert isinstance(result, tg.Node)
    return ("ok", result.data)


@settings(max_examples=60, deadline=None)
@given(a=small_ints, b=small_ints, fn=st.sampled_from(INT_BINARY + COMPARE))
def test_int_arithmetic_on_nodes_equals_arithmetic_on_values(a, b, fn):
    expected = outcome(fn, a, b)
    assert traced_outcome(fn, tg.node(a), tg.node(b)) == expected
    assert traced_outcome(fn, tg.node(a), b) == expected
    assert traced_outcome(fn, a, tg.node(b)) == expected  # reflected


@settings(max_examples=60, deadline=None)
@given(a=finite_floats, b=finite_floats, fn=st.sampled_from(FLOAT_BINARY + COMPARE))
def test_float_arithmetic_on_nodes_equals_arithmetic_on_values(a, b, fn):
    expected = outcome(fn, a, b)
    assert traced_outcome(fn, tg.node(a), tg.node(b)) == expected
    assert traced_outcome(fn, tg.node(a), b) == expected
    assert traced_outcome(fn, a, tg.node(b)) == expected


@settings(max_examples=40, deadline=None)
@given(
    a=st.integers(-50, 50), b=st.integers(0, 20), fn=st.sampled_from([operator.pow, operator.lshift, operator.rshift])
)
def test_power_and_shifts_on_nodes(a, b, fn):
    expected = outcome(fn, a, b)
    assert traced_outcome(fn, tg.node(a), tg.node(b)) == expected
    assert traced_outcome(fn, a, tg.node(b)) == expected


@settings(max_examples=40, deadline=None)
@given(a=small_ints, fn=st.sampled_from(UNARY))
def test_unary_operators_on_nodes(a, fn):
    n = tg.node(a)
    out = fn(n)
    assert isinstance(out, tg.OperationNode)
    assert out.data == fn(a)
    assert out.parents == (n,)


@settings(max_examples=30, deadline=None)
@given(a=st.text(max_size=20), b=st.text(max_size=20))
def test_string_concatenation_and_repetition(a, b):
    assert (tg.node(a) + b).data == a + b
    assert (a + tg.node(b)).data == a + b
    assert (tg.node(a) * 2).data == a * 2
    assert (2 * tg.node(a)).data == 2 * a


def test_reflected_operation_keeps_argument_order_and_parent():
    b = tg.node(3, name="b")
    out = 10 - b
    assert out.data == 7
    assert out.parents == (b,)
    assert out.inputs["a"] == 10
    assert out.inputs["b"] is b


def test_same_node_on_both_sides_is_one_parent():
    a = tg.node(4)
    out = a * a
    assert out.data == 16
    assert out.parents == (a,)


def test_matmul_is_traced():
    class M:
        def __matmul__(self, other):
            return ("matmul", other)

    out = tg.node(M()) @ 3
    assert out.data == ("matmul", 3)


# -- comparisons: nodes, but usable in if / in ---------------------------------------


@pytest.mark.parametrize("fn", COMPARE)
def test_comparisons_return_recorded_nodes(fn):
    a = tg.node(2)
    out = fn(a, 3)
    assert isinstance(out, tg.OperationNode)
    assert out.data is fn(2, 3)
    assert out.parents == (a,)


def test_comparison_results_work_in_if_statements():
    answer = tg.node("yes")
    if answer == "yes":  # noqa: SIM108
        taken = True
    else:
        taken = False
    assert taken
    assert (answer != "yes").data is False
    assert bool(answer == "no") is False


def test_plain_python_protocols_give_plain_values():
    n = tg.node([1, 2, 3])
    assert type(bool(n)) is bool and bool(n)
    assert not bool(tg.node(0))
    assert type(len(n)) is int and len(n) == 3
    assert 2 in n
    assert 5 not in n
    assert tg.node(2) in n  # a node as the item is compared by value
    s = tg.node("hello")
    assert type(str(s)) is str and str(s) == "hello"
    assert f"{s}!" == "hello!"
    assert f"{tg.node(3.14159):.2f}" == "3.14"
    assert "ell" in s


def test_node_in_a_list_of_values():
    assert tg.node(2) in [1, 2, 3]
    assert tg.node(5) not in [1, 2, 3]


def test_nodes_are_hashable_by_identity():
    a, b = tg.node(1), tg.node(1)
    assert len({a, b}) == 2
    d = {a: "a", b: "b"}
    assert d[a] == "a"


def test_integer_node_can_index():
    assert [10, 20, 30][tg.node(1)] == 20
    assert list(range(tg.node(3))) == [0, 1, 2]


def test_non_integer_node_used_as_index_raises_type_error():
    with pytest.raises(TypeError):
        [1, 2][tg.node(1.5)]


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


def test_iterating_other_values_is_an_error():
    with pytest.raises(TypeError):
        list(tg.node(5))


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
