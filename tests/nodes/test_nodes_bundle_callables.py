"""``bundle`` on callables that are not plain functions: partials, callable objects, lambdas."""

from __future__ import annotations

import functools

import pytest

import tracegrad as tg


def add(x, y):
    """Add y to x."""
    return x + y


class Scale:
    """Multiply by a factor."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x):
        return x * self.factor


def test_a_partial_is_named_and_described_by_the_function_it_calls():
    plus_one = tg.bundle(functools.partial(add, y=1))
    assert plus_one.name == "add" and plus_one.description == "Add y to x."
    x = tg.node(2, name="x")
    out = plus_one(x)
    assert out.data == 3 and out.parents == (x,)


def test_a_callable_object_is_named_and_described_by_its_class():
    double = tg.bundle(Scale(2))
    assert double.name == "Scale" and double.description == "Multiply by a factor."
    assert double(tg.node(4)).data == 8


def test_an_async_callable_object_is_awaited():
    class Later:
        async def __call__(self, x):
            return x + 1

    import asyncio

    later = tg.bundle(Later())
    assert later.is_async and asyncio.run(later(tg.node(1))).data == 2


def test_a_lambda_in_an_expression_is_bundled_as_lambda():
    pairs = [tg.bundle(lambda v: v * 2), tg.bundle(name="twice")(lambda v: v * 2)]
    assert [p.name for p in pairs] == ["lambda", "twice"]
    assert [p(tg.node(3)).data for p in pairs] == [6, 6]


@pytest.mark.parametrize(
    "fn", [lambda v: v, functools.partial(add, y=1), Scale(3)], ids=["lambda", "partial", "object"]
)
def test_trainable_needs_a_def_and_says_so(fn):
    with pytest.raises(tg.BundleError, match="written with def") as caught:
        tg.bundle(fn, trainable=True)
    assert isinstance(caught.value, (TypeError, ValueError, tg.TracegradError))


def test_what_is_not_callable_or_already_bundled_gets_a_bundle_error():
    with pytest.raises(tg.BundleError, match="callable"):
        tg.bundle(42)
    bundled = tg.bundle(add)
    with pytest.raises(tg.BundleError, match="already bundled"):
        tg.bundle(bundled)
