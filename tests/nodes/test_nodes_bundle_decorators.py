"""Decorators under ``@bundle(trainable=True)``: applied to new code too, or refused up front."""

from __future__ import annotations

import functools

import pytest

import tracegrad as tg

CALLS: list[str] = []


def log_calls(fn):
    """A decorator that records each call (module level)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        CALLS.append(fn.__name__)
        return fn(*args, **kwargs)

    return wrapper


def tagged(tag):
    """A decorator factory: the result is formatted with ``tag``."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return f"{tag}:{fn(*args, **kwargs)}"

        return wrapper

    return decorate


def unwrapped(fn):
    """A decorator that replaces the function without functools.wraps."""

    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


REGISTRY: list = []


def register(fn):
    """A decorator that returns the function itself."""
    REGISTRY.append(fn)
    return fn


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def test_decorator_under_a_trainable_bundle_keeps_applying_after_a_code_update():
    @tg.bundle(trainable=True)
    @log_calls
    def solve(x):
        return x + 1

    assert solve(1).data == 2
    assert "@log_calls" not in solve.parameter.data
    solve.parameter.data = "def solve(x):\n    return x * 10\n"
    assert solve(2).data == 20
    assert CALLS == ["solve", "solve"]


def test_decorator_factory_with_constant_arguments_is_applied_to_new_code():
    @tg.bundle(trainable=True)
    @tagged("v")
    def describe(x):
        return x

    assert describe(1).data == "v:1"
    describe.parameter.data = "def describe(x):\n    return x * 2\n"
    assert describe(2).data == "v:4"


def test_new_code_under_lru_cache_gets_its_own_cache():
    @tg.bundle(trainable=True)
    @functools.lru_cache(maxsize=4)
    def square(x):
        return x * x

    assert square(3).data == 9
    square.parameter.data = "def square(x):\n    return x * x + 1\n"
    assert square(3).data == 10  # not the old version's cached 9


def test_decorator_defined_in_the_enclosing_function_keeps_applying():
    seen = []

    def count(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            seen.append(args)
            return fn(*args, **kwargs)

        return wrapper

    @tg.bundle(trainable=True)
    @count
    def double(x):
        return 2 * x

    double.parameter.data = "def double(x):\n    return 3 * x\n"
    assert double(2).data == 6
    assert seen == [(2,)]


def test_decorators_are_applied_to_new_code_in_their_written_order():
    @tg.bundle(trainable=True)
    @tagged("outer")
    @tagged("inner")
    def name(x):
        return x

    assert name("a").data == "outer:inner:a"
    name.parameter.data = "def name(x):\n    return x.upper()\n"
    assert name("a").data == "outer:inner:A"


def test_new_code_under_a_decorator_sees_the_functions_own_closure():
    offset = 5

    @tg.bundle(trainable=True)
    @log_calls
    def shift(x):
        return x + offset

    shift.parameter.data = "def shift(x):\n    return x + offset * 2\n"
    assert shift(1).data == 11


def test_decorator_above_a_trainable_bundle_wraps_the_bundle():
    @log_calls
    @tg.bundle(trainable=True)
    def solve(x):
        return x + 1

    solve.parameter.data = "def solve(x):\n    return x - 1\n"
    assert solve(1).data == 0
    assert CALLS == ["solve"]


def test_decorator_without_functools_wraps_under_a_trainable_bundle_is_refused():
    with pytest.raises(TypeError, match=r"@unwrapped.*functools\.wraps"):

        @tg.bundle(trainable=True)
        @unwrapped
        def solve(x):
            return x


def test_decorator_returning_the_function_itself_under_a_trainable_bundle_is_refused():
    with pytest.raises(TypeError, match=r"@register.*above @bundle"):

        @tg.bundle(trainable=True)
        @register
        def solve(x):
            return x


def test_decorator_with_computed_arguments_under_a_trainable_bundle_is_refused():
    prefix = "p"
    with pytest.raises(TypeError, match=r"@tagged\(prefix \+ 'q'\).*constant arguments"):

        @tg.bundle(trainable=True)
        @tagged(prefix + "q")
        def solve(x):
            return x


def test_decorator_under_a_plain_bundle_is_allowed():
    @tg.bundle
    @unwrapped
    def solve(x):
        return x + 1

    assert solve(1).data == 2
