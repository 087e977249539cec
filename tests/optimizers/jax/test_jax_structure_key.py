"""The structure key decides when a compiled program may be reused: graphs that replay
differently must never share one, and the same graph must not compile again."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegrad as tg
from tracegrad.optimizers.jax import JaxOptimizer, ReplayCache, compile


@tg.bundle
def signed(w, c):
    return jnp.sum(jnp.copysign(w, c))


@tg.bundle
def total(w):
    return jnp.sum(w)


def test_zero_and_negative_zero_constants_are_different_programs():
    w = tg.node(jnp.array([1.0, 2.0, 3.0]), trainable=True, name="w")
    cache = ReplayCache()
    positive, negative = compile(signed(w, 0.0), cache=cache), compile(signed(w, -0.0), cache=cache)
    fn, params = negative
    assert float(fn(params, negative.inputs)) == pytest.approx(-6.0)
    np.testing.assert_allclose(negative.grad()["w"], [-1.0, -1.0, -1.0])
    assert float(positive.fn(params, positive.inputs)) == pytest.approx(6.0)


def test_a_numpy_constant_changed_in_place_is_not_replayed_stale():
    scale = tg.node(np.array([3.0, 4.0], np.float32), name="scale")

    @tg.bundle
    def weighted(v):
        return jnp.sum(v * scale.data)  # read inside: a constant of the program

    x = tg.node(jnp.array([1.0, 1.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.0))
    opt.backward(weighted(x))
    assert opt.step().details["loss"] == pytest.approx(7.0)
    scale.data[:] = [10.0, 20.0]
    opt.zero_feedback()
    opt.backward(weighted(x))
    assert opt.step().details["loss"] == pytest.approx(30.0)


def test_parameters_of_another_shape_get_another_program():
    cache = ReplayCache()
    for size in (3, 4):
        w = tg.node(jnp.ones(size), trainable=True, name="w", kind=tg.Array())
        compiled = compile(total(w * w), cache=cache)
        assert float(compiled.fn(compiled.params, compiled.inputs)) == pytest.approx(size)


def test_a_weakly_typed_parameter_compiles_once():
    x = tg.node(jnp.asarray(1.5), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    for _ in range(3):
        opt.zero_feedback()
        opt.backward(x * x)
        opt.step()
    assert opt.trace_count == 1


def test_an_integer_loss_is_refused_at_backward():
    x = tg.node(jnp.array([1.0, -2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    with pytest.raises(TypeError, match="floating-point"):
        opt.backward(tg.apply(lambda v: jnp.sum(v > 0), x))
