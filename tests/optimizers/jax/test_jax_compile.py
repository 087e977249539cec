"""tg.jax.compile: the jitted pure function and its parameter pytree, for vmap and
hand-written training loops."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegrad as tg
from tracegrad.optimizers.jax import CompiledLoss, compile


@tg.bundle
def predict(w, b, x):
    """A linear model."""
    return x @ w + b


@tg.bundle
def mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def problem():
    w = tg.node(jnp.array([0.5, -0.5]), trainable=True, name="w")
    b = tg.node(0.1, trainable=True, name="b")
    x = tg.node(jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), name="x")
    y = tg.node(jnp.array([1.0, 2.0, 3.0]), name="y")
    return w, b, x, y, mse(predict(w, b, x), y)


def test_unpacks_to_a_jitted_pure_function_and_params():
    _w, _b, x, y, loss = problem()
    fn, params = compile(loss)
    assert sorted(params) == ["b", "w"]
    assert params["b"].shape == ()
    c = compile(loss)
    assert isinstance(c, CompiledLoss)
    assert c.input_names == ("x", "y")
    np.testing.assert_allclose(fn(params, c.inputs), loss.data, rtol=1e-6)
    assert hasattr(fn, "lower")  # jitted

    def hand(p, x, y):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    got = jax.grad(fn)(params, (x.data, y.data))
    want = jax.grad(hand)(params, x.data, y.data)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5)


def test_vmap_over_a_batch_of_inputs():
    _w, _b, x, y, loss = problem()
    c = compile(loss)
    ys = jnp.stack([y.data, y.data + 1.0, y.data * 2.0])
    batched = jax.vmap(c.fn, in_axes=(None, (None, 0)))(c.params, (x.data, ys))
    assert batched.shape == (3,)
    for i in range(3):
        np.testing.assert_allclose(batched[i], c(inputs=(x.data, ys[i])), rtol=1e-6)


def test_a_hand_written_training_loop_and_write_back():
    w, b, _x, _y, loss = problem()
    c = compile(loss)
    fn, params = c
    tx = optax.adam(0.1)
    state = tx.init(params)

    @jax.jit
    def step(params, state, inputs):
        value, grads = jax.value_and_grad(fn)(params, inputs)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    first = None
    for _ in range(200):
        params, state, value = step(params, state, c.inputs)
        first = value if first is None else first
    assert value < first / 10
    updates = c.update(params)
    assert sorted(u.name for u in updates) == ["b", "w"]
    assert isinstance(b.data, float)
    np.testing.assert_allclose(w.data, params["w"])
    with pytest.raises(KeyError):
        c.update({"nope": 1.0})


def test_parameters_can_be_chosen_and_must_be_differentiable():
    w, _b, _x, y, loss = problem()
    c = compile(loss, [w])
    assert sorted(c.params) == ["w"]
    assert len(c.inputs) == 3  # b is now an input (a float), beside x and y
    with pytest.raises(TypeError):
        compile(loss, [tg.node("text", trainable=True, name="t")])
    with pytest.raises(tg.TracegradError, match="no float-array"):
        compile(mse(y, y))
    with pytest.raises(TypeError):
        compile("not a node")


def test_duplicate_parameter_names_are_an_error():
    a = tg.node(jnp.ones(2), trainable=True, name="p")
    b = tg.node(jnp.ones(2), trainable=True, name="p")
    with pytest.raises(tg.TracegradError, match="distinct names"):
        compile(mse(a, b))
