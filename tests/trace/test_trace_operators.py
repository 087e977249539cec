"""Operators traced on nodes: a node behaves like its value, and operations are recorded."""

from __future__ import annotations

import operator

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
