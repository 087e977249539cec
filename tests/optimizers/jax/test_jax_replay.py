"""Trace replay: gradients through the replayed graph equal jax.grad of the same function
written by hand; the structure key caches and invalidates compiled programs; operations
that JAX cannot replay give an error naming the node."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegrad as tg
from tracegrad.optimizers.jax import JaxOptimizer, NotDifferentiableError, ReplayCache, analyze, compile


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def grads_close(got, want):
    assert sorted(got) == sorted(want)
    for k in want:
        close(got[k], want[k])


@tg.bundle
def total(v):
    """Sum of the elements."""
    return jnp.sum(v)


@tg.bundle
def mse(pred, target):
    """Mean squared error."""
    return jnp.mean((pred - target) ** 2)


@tg.bundle
def softplus_layer(x, w, b=0.0):
    """log(1 + exp(w * x + b))."""
    return jax.nn.softplus(w * x + b)


@tg.bundle
def inner(v):
    """An inner bundle: sin."""
    return jnp.sin(v)


@tg.bundle
def outer(v, w):
    """An outer bundle that calls another bundle."""
    return jnp.sum(inner(v) * w) + jnp.sum(inner(w) ** 2)


def arr(*values):
    return jnp.array(values, dtype=jnp.float32)


# -- gradients equal hand-written jax.grad ---------------------------------------------


def test_arithmetic_operators():
    x = tg.node(arr(1.0, -2.0, 3.0), trainable=True, name="x")

    loss = total((x * 2.0 + 1.0) ** 2 / 3.0 - x * x + (-x) + abs(x) + 5.0 - x)
    c = compile(loss)

    def hand(p):
        v = p["x"]
        return jnp.sum((v * 2.0 + 1.0) ** 2 / 3.0 - v * v + (-v) + jnp.abs(v) + 5.0 - v)

    close(c(), loss.data)
    grads_close(c.grad(), jax.grad(hand)(c.params))


def test_reflected_operators_and_matmul():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    m = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    loss = total(2.0 - x) + total(3.0 / (x + 1.0)) + total(m @ x) + total(x @ m)
    c = compile(loss)

    def hand(p):
        v = p["x"]
        return jnp.sum(2.0 - v) + jnp.sum(3.0 / (v + 1.0)) + jnp.sum(m @ v) + jnp.sum(v @ m)

    grads_close(c.grad(), jax.grad(hand)(c.params))


def test_bundled_jnp_functions_with_keyword_arguments():
    x = tg.node(arr(0.5, -1.0, 2.0), trainable=True, name="x")
    w = tg.node(arr(1.0, 2.0, -0.5), trainable=True, name="w")
    target = tg.node(arr(0.0, 1.0, 0.5), name="target")
    loss = mse(softplus_layer(x, w, b=0.3), target)
    c = compile(loss)

    def hand(p, t):
        return jnp.mean((jax.nn.softplus(p["w"] * p["x"] + 0.3) - t) ** 2)

    close(c(), loss.data)
    grads_close(c.grad(), jax.grad(hand)(c.params, target.data))


def test_getitem_with_ints_slices_and_index_arrays():
    x = tg.node(jnp.arange(12.0).reshape(3, 4) / 10.0, trainable=True, name="x")
    idx = jnp.array([2, 0])
    loss = total(x[0] * total(x[1:, ::2])) + total(x[idx] ** 2) + x[2, 3] * 3.0 + total(x[..., 1])
    c = compile(loss)

    def hand(p):
        v = p["x"]
        return jnp.sum(v[0] * jnp.sum(v[1:, ::2])) + jnp.sum(v[idx] ** 2) + v[2, 3] * 3.0 + jnp.sum(v[..., 1])

    close(c(), loss.data)
    grads_close(c.grad(), jax.grad(hand)(c.params))


def test_nested_bundles():
    v = tg.node(arr(0.1, 0.2, 0.3), trainable=True, name="v")
    w = tg.node(arr(1.0, -1.0, 2.0), trainable=True, name="w")
    loss = outer(v, w)
    c = compile(loss)

    def hand(p):
        return jnp.sum(jnp.sin(p["v"]) * p["w"]) + jnp.sum(jnp.sin(p["w"]) ** 2)

    assert len(c.program.ops) == 1  # the nested call is part of the one recorded operation
    grads_close(c.grad(), jax.grad(hand)(c.params))


def test_several_parameters_with_a_number_and_an_input():
    a = tg.node(arr(1.0, 2.0, 3.0), trainable=True, name="a")
    b = tg.node(jnp.ones((3, 2)), trainable=True, name="b")
    s = tg.node(0.5, trainable=True, name="s")
    data = tg.node(arr(3.0, -1.0), name="data")

    @tg.bundle
    def model(a, b, s, data):
        return jnp.sum((a @ b) * data) * s + s**2

    loss = model(a, b, s, data) + total(a) * s
    c = compile(loss)
    assert c.input_names == ("data",)
    assert c.params["s"].shape == ()

    def hand(p, d):
        return jnp.sum((p["a"] @ p["b"]) * d) * p["s"] + p["s"] ** 2 + jnp.sum(p["a"]) * p["s"]

    close(c(), loss.data)
    grads_close(c.grad(), jax.grad(hand)(c.params, data.data))


def test_operations_that_do_not_depend_on_parameters_are_inputs():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    raw = tg.node(arr(4.0, 9.0), name="raw")
    features = raw * 0.5 + 1.0  # recorded, but no parameter upstream: an input
    loss = total(x * features)
    c = compile(loss)
    assert len(c.program.ops) == 2  # x * features, total
    assert len(c.inputs) == 1
    grads_close(c.grad(), {"x": features.data})


def test_parameters_of_other_kinds_are_constants():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    power = tg.node(2, trainable=True, name="power")  # an integer parameter: baked in
    loss = total(x**power)
    c = compile(loss)
    assert sorted(c.params) == ["x"]
    grads_close(c.grad(), {"x": 2 * x.data})


def test_several_losses_add_up():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    l1, l2 = total(x**2), total(x * 3.0)
    c = compile([l1, l2])
    grads_close(c.grad(), {"x": 2 * x.data + 3.0})


# -- the structure key ---------------------------------------------------------------------


def run_steps(opt, forward, n):
    for _ in range(n):
        loss = forward()
        opt.zero_feedback()
        opt.backward(loss)
        opt.step()


def test_a_repeated_graph_shape_compiles_once_and_new_inputs_are_used():
    x = tg.node(arr(1.0, 2.0, 3.0), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    batches = iter([arr(1.0, 1.0, 1.0), arr(2.0, 0.0, 1.0), arr(0.0, 3.0, 1.0)] * 3)
    for _ in range(6):
        batch = tg.node(next(batches), name="batch")
        before = x.data
        loss = mse(x, batch)
        opt.zero_feedback()
        opt.backward(loss)
        opt.step()
        # sgd: new = old - 0.1 * grad, with grad = 2 (x - batch) / 3 for this very batch
        close(x.data, before - 0.1 * 2 * (before - batch.data) / 3)
    assert opt.compile_count == 1
    assert opt.trace_count == 1
    assert opt.cache_info()["hits"] == 5


def test_a_changed_structure_recompiles_and_gives_the_right_gradient():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(1.0))

    def gradient(build, expected):
        before = x.data
        opt.zero_feedback()
        opt.backward(build())
        opt.step()
        close(before - x.data, expected(before))  # sgd with learning rate 1: the gradient

    gradient(lambda: total(x * 2.0), lambda v: [2.0, 2.0])
    gradient(lambda: total(x * 3.0), lambda v: [3.0, 3.0])  # another constant: another program
    assert opt.compile_count == 2
    gradient(lambda: total(x[0] * x), lambda v: [v[0] * 2 + v[1], v[0]])  # getitem
    gradient(lambda: total(x[1] * x), lambda v: [v[1], v[0] + v[1] * 2])  # another index
    assert opt.compile_count == 4
    gradient(lambda: total(x * 2.0), lambda v: [2.0, 2.0])  # seen before: from the cache
    assert opt.compile_count == 4
    gradient(lambda: total(total(x * 2.0) * x), lambda v: 4 * jnp.sum(v) * jnp.ones(2))  # one op more
    assert opt.compile_count == 5


def test_an_input_of_another_shape_is_another_structure():
    x = tg.node(arr(1.0), trainable=True, name="x")
    keys = set()
    for data in (arr(1.0, 2.0), arr(3.0, 4.0), arr(1.0, 2.0, 3.0)):
        loss = total(x * tg.node(data))
        keys.add(analyze([loss], {id(x): "x"}).key)
    assert len(keys) == 2


def test_the_structure_key_does_not_depend_on_values():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    k1 = analyze([total(x * tg.node(arr(1.0, 1.0)) + 0.5)], {id(x): "x"}).key
    x.data = arr(5.0, 6.0)
    k2 = analyze([total(x * tg.node(arr(7.0, 8.0)) + 0.5)], {id(x): "x"}).key
    assert k1 == k2
    k3 = analyze([total(x * tg.node(arr(7.0, 8.0)) + 0.25)], {id(x): "x"}).key
    assert k3 != k1


def test_float_inputs_are_arguments_not_constants():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(1.0))
    for scale in (1.0, 2.0, 3.0):
        before = x.data
        opt.zero_feedback()
        opt.backward(total(x * tg.node(scale, name="scale")))
        opt.step()
        close(before - x.data, [scale, scale])
    assert opt.compile_count == 1


def test_cache_is_bounded():
    x = tg.node(arr(1.0), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1), cache_size=2)
    for c in (1.0, 2.0, 3.0, 1.0):
        opt.zero_feedback()
        opt.backward(total(x * c))
        opt.step()
    assert len(opt.cache) == 2
    assert opt.compile_count == 4  # 1.0 was evicted by 3.0
    with pytest.raises(ValueError):
        ReplayCache(0)


def test_compile_with_a_cache_reuses_the_program():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    cache = ReplayCache(4)
    c1 = compile(total(x * 2.0), cache=cache)
    c2 = compile(total(x * 2.0), cache=cache)
    assert c1.program is c2.program
    c1(), c2()
    assert c1.traces == 1


def test_the_program_does_not_keep_the_graph_alive():
    import gc
    import weakref

    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    loss = total(x * 2.0)
    ref = weakref.ref(loss)
    opt.backward(loss)
    opt.step()
    opt.zero_feedback()
    del loss
    gc.collect()
    assert ref() is None


# -- what cannot be replayed -----------------------------------------------------------------


def test_numpy_inside_a_bundle_names_the_node():
    @tg.bundle
    def numpy_sin(v):
        return np.sin(v)

    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    y = numpy_sin(x)
    loss = total(y)
    with pytest.raises(NotDifferentiableError) as err:
        compile(loss).grad()
    assert err.value.node_name == y.name
    assert err.value.operator == "numpy_sin"
    assert "jax.numpy" in str(err.value) and y.name in str(err.value)
    assert isinstance(err.value, tg.TracegradError)


def test_float_of_a_traced_value_names_the_node():
    @tg.bundle
    def to_float(v):
        return float(v[0]) * 2.0

    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    loss = to_float(x) + 1.0
    opt = JaxOptimizer([x], optax.sgd(0.1))
    opt.backward(loss)
    with pytest.raises(NotDifferentiableError, match="to_float"):
        opt.step()
    assert len(opt.cache) == 0  # the broken program is not kept
    close(x.data, [1.0, 2.0])


def test_python_if_on_a_traced_value_hints_at_jnp_where():
    @tg.bundle
    def relu(v):
        return v if v > 0 else 0.0 * v

    x = tg.node(jnp.asarray(2.0), trainable=True, name="x")
    with pytest.raises(NotDifferentiableError, match=r"jnp\.where"):
        compile(relu(x) * 1.0).grad()


def test_text_built_from_a_parameter_is_not_differentiable():
    @tg.bundle
    def describe(v):
        return f"value {v}"

    @tg.bundle
    def text_length(s):
        return jnp.asarray(len(s), dtype=jnp.float32)

    x = tg.node(arr(1.0), trainable=True, name="x")
    text = describe(x)
    with pytest.raises(NotDifferentiableError, match="text") as err:
        compile(text_length(text)).grad()
    assert err.value.node_name == text.name


def test_reading_a_parameter_through_data_is_refused():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")

    @tg.bundle
    def sneaky(v):
        return jnp.sum(v * x.data)  # reads x without taking it as an argument

    loss = sneaky(x * 1.0)
    with pytest.raises(NotDifferentiableError, match=r"reads x through \.data"):
        compile(loss)


def test_reading_a_constant_through_data_is_baked_and_keyed():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    other = tg.node(arr(3.0, 4.0), trainable=True, name="other")  # not differentiated here
    opt = JaxOptimizer([x], optax.sgd(1.0))

    @tg.bundle
    def reads_other(v):
        return jnp.sum(v * other.data)

    for value in (arr(3.0, 4.0), arr(5.0, 6.0)):
        other.data = value
        before = x.data
        opt.zero_feedback()
        opt.backward(reads_other(x))
        opt.step()
        close(before - x.data, value)  # the gradient uses the value read in this step
    assert opt.compile_count == 2


def test_a_loss_that_is_not_a_scalar_is_refused():
    x = tg.node(arr(1.0, 2.0), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    with pytest.raises(TypeError, match="scalar"):
        opt.backward(x * 2.0)
    with pytest.raises(NotDifferentiableError, match="scalar"):
        compile(x * 2.0).grad()
    with pytest.raises(TypeError, match="scalar"):
        opt.backward(tg.node("text"))


def test_parameters_inside_a_namedtuple_an_ordereddict_and_a_dataclass_get_gradients():
    import collections
    import dataclasses

    Pair = collections.namedtuple("Pair", "w b")

    @dataclasses.dataclass
    class Box:
        scale: object

    @tg.bundle
    def loss_of(pair, extra, box):
        """Squared error of the affine map, read from three kinds of containers."""
        return jnp.sum((pair.w * box.scale + pair.b + extra["shift"] - 1.0) ** 2)

    w = tg.node(jnp.array([0.5, 2.0]), trainable=True, name="w")
    b = tg.node(0.0, trainable=True, name="b")
    shift = tg.node(jnp.array(0.25), trainable=True, name="shift")
    loss = loss_of(Pair(w, b), collections.OrderedDict(shift=shift), Box(tg.node(2.0, name="scale")))
    assert {p.name for p in loss.parents} == {"w", "b", "shift", "scale"}
    compiled = compile(loss, [w, b, shift])
    value, grads = compiled.value_and_grad()
    expected = jnp.sum((jnp.array([0.5, 2.0]) * 2.0 + 0.25 - 1.0) ** 2)
    assert float(value) == pytest.approx(float(expected))
    residual = jnp.array([0.5, 2.0]) * 2.0 + 0.25 - 1.0
    np.testing.assert_allclose(grads["w"], 2 * residual * 2.0, rtol=1e-6)
    assert float(grads["b"]) == pytest.approx(float(jnp.sum(2 * residual)))
