"""tg.node(...) and typed parameter kinds validated with pydantic."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typing_extensions import TypedDict

import tracegrad as tg

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # nan and infinities included
    st.text(max_size=10),
    st.decimals(),
    st.lists(st.integers(), max_size=2),
    st.binary(max_size=5),
)


# -- tg.node -------------------------------------------------------------------------------


def test_node_signature_defaults():
    n = tg.node("v")
    assert not n.trainable
    assert n.description is None
    assert str(n.serial) in n.name


def test_node_with_name_and_description():
    n = tg.node(3, name="three", description="a constant")
    assert n.name == "three"
    assert n.description == "a constant"


@pytest.mark.parametrize(
    ("value", "kind_name"),
    [("text", "text"), (0.5, "number"), (3, "integer"), ({"a": [1]}, "json"), ([1, 2], "json"), (True, "choice")],
)
def test_kind_is_inferred_from_the_value(value, kind_name):
    p = tg.node(value, trainable=True)
    assert p.kind.name == kind_name
    assert p.data == value


def test_boolean_parameter_is_a_choice_of_false_and_true():
    p = tg.node(True, trainable=True)
    p.data = False
    assert p.data is False
    with pytest.raises(tg.InvalidValueError):
        p.data = 2


def test_kind_cannot_be_inferred_for_arbitrary_objects():
    with pytest.raises(TypeError):
        tg.node(object(), trainable=True)


def test_non_finite_float_parameter_is_rejected():
    with pytest.raises(tg.InvalidValueError):
        tg.node(math.nan, trainable=True)


@pytest.mark.parametrize(
    ("name", "kind_type", "value"),
    [("text", tg.Text, "x"), ("number", tg.Number, 1.5), ("integer", tg.Integer, 2), ("json", tg.Structure, [1])],
)
def test_kinds_by_name(name, kind_type, value):
    p = tg.node(value, trainable=True, kind=name)
    assert isinstance(p.kind, kind_type)
    assert p.kind.name == name


def test_unknown_kind_name_is_an_error():
    with pytest.raises(ValueError, match="unknown kind"):
        tg.node(1, trainable=True, kind="nope")


@pytest.mark.parametrize("name", ["choice", "code"])
def test_kind_names_that_need_arguments(name):
    with pytest.raises(ValueError):
        tg.node("x", trainable=True, kind=name)


def test_kind_of_the_wrong_type_is_an_error():
    with pytest.raises(TypeError):
        tg.node(1, trainable=True, kind=3)


def test_initial_value_is_validated():
    with pytest.raises(tg.InvalidValueError) as info:
        tg.node(5.0, trainable=True, kind=tg.Number(0, 1), name="rate")
    assert "rate" in str(info.value)


def test_non_trainable_node_with_a_kind_is_validated():
    with pytest.raises(tg.InvalidValueError):
        tg.node("abc", kind="number")


# -- invalid assignments --------------------------------------------------------------------


@pytest.mark.parametrize("assign", ["data", "update"])
@pytest.mark.parametrize(
    ("kind", "old", "bad"),
    [
        (tg.Text(), "hello", 42),
        (tg.Text(max_length=5), "hello", "too long text"),
        (tg.Number(0, 1), 0.5, 2.0),
        (tg.Number(), 0.5, "not a number"),
        (tg.Number(), 0.5, math.inf),
        (tg.Number(), 0.5, True),
        (tg.Integer(0, 10), 3, 11),
        (tg.Integer(), 3, 3.5),
        (tg.Integer(), 3, False),
        (tg.Choice(("a", "b")), "a", "c"),
        (tg.Structure(list[int]), [1], ["x"]),
        (tg.Structure(), {"a": 1}, {"a": math.nan}),
        (tg.Structure(), {"a": 1}, {"a": object()}),
    ],
)
def test_invalid_value_is_rejected_and_old_value_kept(kind, old, bad, assign):
    p = tg.node(old, trainable=True, kind=kind, name="param_under_test")
    with pytest.raises(tg.InvalidValueError) as info:
        if assign == "data":
            p.data = bad
        else:
            p.update(bad)
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, tg.TracegradError)
    assert err.reason
    assert "param_under_test" in str(err)
    assert err.reason in str(err)
    assert p.data == old


def test_reason_explains_the_constraint():
    p = tg.node(0.5, trainable=True, kind=tg.Number(0, 1))
    with pytest.raises(tg.InvalidValueError) as info:
        p.update(3)
    assert "0" in info.value.reason and "1" in info.value.reason
    assert "3" in info.value.reason


def test_valid_update_returns_and_stores_the_value():
    p = tg.node(0.5, trainable=True, kind=tg.Number(0, 1))
    assert p.update(0.25) == 0.25
    assert p.data == 0.25


def test_plain_nodes_cannot_be_assigned():
    n = tg.node(1)
    with pytest.raises(AttributeError):
        n.data = 2


# -- Text --------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_text_accepts_any_string(s):
    p = tg.node("", trainable=True, kind=tg.Text())
    p.update(s)
    assert p.data == s


def test_text_describe():
    assert "text" in tg.Text().describe()
    assert "5" in tg.Text(max_length=5).describe()


# -- Number / Integer ------------------------------------------------------------------------------


def test_number_coerces_numeric_strings_and_ints():
    p = tg.node(0.5, trainable=True, kind=tg.Number(0, 1))
    p.data = "0.25"
    assert p.data == 0.25 and type(p.data) is float
    p.data = 1
    assert p.data == 1.0 and type(p.data) is float


def test_number_bounds_must_be_ordered():
    with pytest.raises(ValueError):
        tg.Number(1, 0)
    with pytest.raises(ValueError):
        tg.Integer(5, 1)


@settings(max_examples=150, deadline=None)
@given(
    bounds=st.tuples(st.one_of(st.none(), st.floats(-100, 100)), st.one_of(st.none(), st.floats(-100, 100))).filter(
        lambda b: None in b or b[0] <= b[1]
    ),
    value=anything,
)
def test_number_never_stores_an_out_of_bounds_value(bounds, value):
    low, high = bounds
    kind = tg.Number(low, high)
    start = low if low is not None else (high if high is not None else 0.0)
    p = tg.node(float(start), trainable=True, kind=kind)
    try:
        p.update(value)
    except tg.InvalidValueError:
        assert p.data == start
    stored = p.data
    assert type(stored) is float
    assert math.isfinite(stored)
    assert low is None or stored >= low
    assert high is None or stored <= high


@settings(max_examples=150, deadline=None)
@given(
    bounds=st.tuples(st.one_of(st.none(), st.integers(-100, 100)), st.one_of(st.none(), st.integers(-100, 100))).filter(
        lambda b: None in b or b[0] <= b[1]
    ),
    value=anything,
)
def test_integer_never_stores_an_out_of_bounds_value(bounds, value):
    low, high = bounds
    start = low if low is not None else (high if high is not None else 0)
    p = tg.node(start, trainable=True, kind=tg.Integer(low, high))
    try:
        p.update(value)
    except tg.InvalidValueError:
        assert p.data == start
    stored = p.data
    assert type(stored) is int
    assert low is None or stored >= low
    assert high is None or stored <= high


def test_integer_accepts_integral_float_and_numeric_string():
    p = tg.node(1, trainable=True, kind="integer")
    p.data = 3.0
    assert p.data == 3 and type(p.data) is int
    p.data = "7"
    assert p.data == 7


def test_number_accepts_decimal():
    p = tg.node(0.5, trainable=True)
    p.data = Decimal("0.75")
    assert p.data == 0.75 and type(p.data) is float


def test_number_describe_mentions_bounds():
    described = tg.Number(0, 1).describe()
    assert "number" in described and "0" in described and "1" in described
    assert "integer" in tg.Integer(low=2).describe()


# -- Choice -------------------------------------------------------------------------------------


def test_choice_accepts_options_and_names_of_options():
    p = tg.node("fast", trainable=True, kind=tg.Choice(("fast", "slow")))
    p.data = "slow"
    assert p.data == "slow"
    q = tg.node(1, trainable=True, kind=tg.Choice((1, 2, 3)))
    q.data = "2"  # a string naming an option selects it
    assert q.data == 2 and type(q.data) is int
    with pytest.raises(tg.InvalidValueError):
        q.data = 4
    with pytest.raises(tg.InvalidValueError):
        q.data = True  # not the option 1
    assert q.data == 2


def test_choice_needs_options():
    with pytest.raises(ValueError):
        tg.Choice(())


def test_choice_describe_lists_options():
    assert "fast" in tg.Choice(("fast", "slow")).describe()


@settings(max_examples=50, deadline=None)
@given(options=st.lists(st.one_of(st.integers(), st.text()), min_size=1, max_size=5, unique=True), value=anything)
def test_choice_only_ever_stores_an_option(options, value):
    p = tg.node(options[0], trainable=True, kind=tg.Choice(tuple(options)))
    try:
        p.update(value)
    except tg.InvalidValueError:
        assert p.data == options[0]
    assert any(type(p.data) is type(o) and p.data == o for o in options)


# -- Structure ------------------------------------------------------------------------------------


class Plan(BaseModel):
    steps: list[str]
    budget: int = 1


class Point(TypedDict):
    x: int
    y: int


def test_structure_with_a_pydantic_model_schema_stores_json_data():
    p = tg.node({"steps": ["a"]}, trainable=True, kind=tg.Structure(Plan))
    assert p.data == {"steps": ["a"], "budget": 1}
    p.data = Plan(steps=["b", "c"], budget=2)
    assert p.data == {"steps": ["b", "c"], "budget": 2}
    p.data = '{"steps": ["from json text"]}'
    assert p.data == {"steps": ["from json text"], "budget": 1}
    with pytest.raises(tg.InvalidValueError):
        p.data = {"steps": "not a list of str", "budget": "x"}
    with pytest.raises(tg.InvalidValueError):
        p.data = "{not json"
    assert p.data == {"steps": ["from json text"], "budget": 1}


def test_structure_with_typed_dict_and_generic_schemas():
    p = tg.node({"x": 1, "y": 2}, trainable=True, kind=tg.Structure(Point))
    with pytest.raises(tg.InvalidValueError):
        p.data = {"x": 1}
    q = tg.node([1, 2], trainable=True, kind=tg.Structure(list[int]))
    q.data = ["3"]  # coerced by the schema
    assert q.data == [3]


def test_structure_without_schema_accepts_json_like_data_only():
    p = tg.node({"a": [1, 2.5, None, True, "s"]}, trainable=True)
    assert p.kind.name == "json"
    p.data = [{"nested": {"ok": 1}}]
    assert p.data == [{"nested": {"ok": 1}}]
    for bad in ({"a": {1, 2}}, {"a": math.inf}, [object()]):
        with pytest.raises(tg.InvalidValueError):
            p.data = bad
    assert p.data == [{"nested": {"ok": 1}}]


def test_structure_describe_includes_the_schema():
    assert "json" in tg.Structure().describe()
    assert "steps" in tg.Structure(Plan).describe()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(value=st.dictionaries(st.text(max_size=5), json_values, max_size=4) | st.lists(json_values, max_size=4))
def test_structure_stores_json_like_data_unchanged(value):
    p = tg.node({}, trainable=True, kind=tg.Structure())
    p.update(value)
    assert p.data == value


# -- Code -----------------------------------------------------------------------------------------


def test_code_kind_checks_name_and_signature():
    def solve(problem, hint=None, *args, key, **kw):
        return problem

    kind = tg.Code.of(solve)
    good = "def solve(problem, hint=None, *args, key, **kw):\n    return hint\n"
    assert kind.validate(good) == good
    helper = "import math\n\ndef helper():\n    return 1\n\ndef solve(problem, hint=2, *args, key, **kw):\n    pass\n"
    kind.validate(helper)
    for bad in (
        "def solve(problem):\n    return 1\n",  # another signature
        "def solve(problem, hint, *args, key, **kw):\n    pass\n",  # default removed
        "def other(problem, hint=None, *args, key, **kw):\n    pass\n",  # another name
        "def solve(problem, hint=None, *args, key, **kw)\n    pass\n",  # does not parse
        42,
    ):
        with pytest.raises(tg.InvalidValueError):
            kind.validate(bad)
    assert "solve" in kind.describe()


def test_code_kind_dedents_indented_source():
    def f(x):
        return x

    source = "    def f(x):\n        return x + 1\n"
    assert tg.Code.of(f).validate(source) == "def f(x):\n    return x + 1\n"


def test_structure_without_schema_keeps_strings_as_strings():
    p = tg.node({"a": 1}, trainable=True, kind=tg.Structure())
    p.data = "123"
    assert p.data == "123"


def test_plain_node_with_a_kind_stores_the_coerced_value():
    assert tg.node("0.5", kind="number").data == 0.5
