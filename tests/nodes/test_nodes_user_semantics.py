"""Kinds refuse bad definitions with tracegrad's own error; modules find parameters used
as dict keys and copy with their paths."""

from __future__ import annotations

import copy

import pydantic
import pytest

import tracegrad as tg
from tracegrad.errors import InvalidKindError

# -- kinds defined with bad arguments ---------------------------------------------------------

BAD_KINDS = [
    (lambda: tg.Choice("short"), r"Choice: options should be a tuple or a list, not 'short' \(for a single item"),
    (lambda: tg.Choice(()), "Choice: options must hold at least one option"),
    (lambda: tg.Choice(), "Choice: the argument 'options' is required"),
    (lambda: tg.Number(1, 0), r"Number: low \(1.0\) must not exceed high \(0.0\)"),
    (lambda: tg.Number("a"), "Number: low should be a valid number, not 'a'"),
    (lambda: tg.Number(float("nan")), "Number: low must be a number or None, not NaN"),
    (lambda: tg.Number(lo=1), "Number: there is no argument 'lo' \\(the arguments are low, high\\)"),
    (lambda: tg.Number(1, 2, 3), "Number: takes at most 2 positional arguments"),
    (lambda: tg.Integer(5, 1), r"Integer: low \(5\) must not exceed high \(1\)"),
    (lambda: tg.Integer(1.5), "Integer: low should be a valid integer, not 1.5"),
    (lambda: tg.Text(max_length="x"), "Text: max_length should be a valid integer, not 'x'"),
    (lambda: tg.Text(max_length=0), "Text: max_length must be at least 1 or None, not 0"),
    (lambda: tg.Structure(schema=42), "Structure: schema must be a type to validate data with"),
    (lambda: tg.Code(1, ()), "Code: function should be a valid string, not 1"),
    (lambda: tg.Code("f", 3), "Code: signature should be a tuple or a list, not 3"),
    (lambda: tg.Array(shape="x"), "Array: shape should be a tuple or a list, not 'x'"),
    (lambda: tg.Array(shape=(-1,)), "Array: shape must have no negative dimension"),
    (lambda: tg.Array(dtype="foo"), "Array: dtype 'foo' is not the name of a dtype"),
    (lambda: tg.Array(dtype="str"), "Array: dtype must be numeric, not 'str'"),
    (lambda: tg.Array(low=3, high=1), r"Array: low \(3.0\) must not exceed high \(1.0\)"),
]


@pytest.mark.parametrize(("make", "message"), BAD_KINDS)
def test_a_kind_with_bad_arguments_raises_invalid_kind_error_naming_the_argument(make, message):
    with pytest.raises(InvalidKindError, match=message) as info:
        make()
    error = info.value
    assert isinstance(error, tg.TracegradError) and isinstance(error, TypeError) and isinstance(error, ValueError)
    assert not isinstance(error, pydantic.ValidationError)
    assert error.__cause__ is None or not isinstance(error.__cause__, pydantic.ValidationError)
    assert "\n" not in str(error) and "pydantic" not in str(error)


def test_kinds_with_good_arguments_still_work():
    assert tg.Choice(["a", "b"]).options == ("a", "b")
    assert tg.Number(0, 1).validate("0.5") == 0.5
    assert tg.Integer(high=3).validate(2) == 2
    assert tg.Text(max_length=5).validate("abc") == "abc"
    assert tg.Structure(list[int]).validate([1]) == [1]
    assert tg.Code.of(lambda x: x).function == "<lambda>"
    assert tg.Array(shape=(2,), dtype="float32").shape == (2,)


def test_an_unknown_kind_name_raises_invalid_kind_error():
    with pytest.raises(InvalidKindError, match="unknown kind 'textt'"):
        tg.parameter("x", kind="textt")
    with pytest.raises(InvalidKindError, match="cannot infer a parameter kind"):
        tg.parameter(object())


# -- modules ------------------------------------------------------------------------------------


class Router(tg.Module):
    def __init__(self):
        self.prompt = tg.parameter("route the request")
        self.routes = {tg.parameter("billing"): "billing_agent", "fallback": tg.parameter("ask again")}


def test_a_parameter_used_as_a_dict_key_is_found_by_named_parameters():
    router = Router()
    names = dict(router.named_parameters())
    assert list(names) == ["prompt", "routes.<key 0>", "routes.fallback"]
    key = next(iter(router.routes))
    assert names["routes.<key 0>"] is key and key.name == "routes.<key 0>"
    state = router.state_dict()
    assert state["routes.<key 0>"] == "billing"
    fresh = Router()
    fresh.load_state_dict({**state, "routes.<key 0>": "refunds"})
    assert next(iter(fresh.routes)).value == "refunds"


def test_a_deep_copy_of_a_module_has_detached_parameters_with_the_same_paths():
    router = Router()
    out = router.prompt + "!"
    out.backward("too vague")
    twin = copy.deepcopy(router)
    originals, copies = dict(router.named_parameters()), dict(twin.named_parameters())
    assert list(copies) == list(originals)
    for path, param in copies.items():
        assert param is not originals[path] and param.name == path
        assert not param.has_feedback and param.value == originals[path].value
    twin.prompt.data = "route carefully"
    assert router.prompt.value == "route the request"
