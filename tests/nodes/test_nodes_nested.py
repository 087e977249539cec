"""``@bundle(trace_inside=True)``: one operation outside, its operations recorded as an inner graph."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import weakref

import pytest

import tracegrad as tg
from tracegrad.nodes.nested import inner_graph
from tracegrad.trace import topological


def ids(nodes):
    return [id(n) for n in nodes]


@tg.bundle
def clip(v, hi):
    """Clip v to hi."""
    return min(v, hi)


def make_layer(trace_inside: bool):
    w = tg.parameter(2.0, name="w")
    b = tg.parameter(1.0, name="b")

    def layer(x, scale):
        """A small layer."""
        h = x * w + b
        return clip(h * scale, 100.0)

    return w, b, tg.bundle(trace_inside=trace_inside)(layer)


def test_feedback_reaches_a_parameter_read_inside_a_trace_inside_bundle():
    w, b, layer = make_layer(True)
    out = layer(tg.node(3.0, name="x"), 2)
    assert out.data == 14.0
    out.backward("too small")
    assert [f.value for f in w.feedback] == ["too small"]
    assert [f.value for f in b.feedback] == ["too small"]


def test_outer_trace_of_a_trace_inside_call_shows_one_operation():
    w, b, layer = make_layer(True)
    x = tg.node(3.0, name="x")
    out = layer(x, 2)
    assert ids(topological([out])) == ids([x, w, b, out])
    assert list(tg.to_networkx(out).nodes) == ["x", "w", "b", "layer1"]


def test_trace_inside_call_has_the_same_inputs_as_a_plain_call():
    for trace_inside in (False, True):
        w, b, layer = make_layer(trace_inside)
        x = tg.node(3.0, name="x")
        out = layer(x, 2)
        assert ids(out.parents) == ids([x, w, b])
        assert ids(out.captured) == ids([w, b])
        assert out.args[1] == 2
        assert (inner_graph(out) is not None) is trace_inside


def test_inner_graph_holds_the_operations_inside_with_nested_bundles_recorded_there():
    w, b, layer = make_layer(True)
    x = tg.node(3.0, name="x")
    out = layer(x, 2)
    inner = inner_graph(out)
    names = [n.operator.name for n in inner.nodes]
    assert names == ["mul", "add", "mul", "clip"]
    (result,) = inner.outputs
    assert result.operator.name == "clip" and result.data == out.data
    mul, add, scaled, _ = inner.nodes
    assert ids(mul.parents) == ids([x, w])  # the argument node itself, not a copy
    assert ids(scaled.parents) == ids([add])  # the plain 2 stays a constant
    assert [s.operator.name for s in inner.steps([b])] == ["add", "mul", "clip"]
    assert inner.is_inner(add) and not inner.is_inner(x) and not inner.is_inner(w)


def test_trace_inside_function_gets_node_arguments_as_nodes_and_plain_values_as_they_are():
    got = []

    @tg.bundle(trace_inside=True)
    def look(a, b, items):
        got.extend([a, b, items])
        return a

    a = tg.node(1, name="a")
    items = [1, 2]
    out = look(a, 5, items)
    assert got[0] is a and got[1] == 5 and got[2] is items
    assert out.data == 1 and ids(out.parents) == ids([a])
    assert inner_graph(out).outputs == ()


def test_trace_inside_bundle_called_inside_a_plain_bundle_just_runs_on_values():
    w, _, layer = make_layer(True)

    @tg.bundle
    def outer(x):
        return layer(x, 1) + 1

    out = outer(tg.node(3.0))
    assert out.data == 8.0
    assert inner_graph(out) is None
    assert id(w) in ids(out.parents)


def test_trace_inside_call_under_no_trace_records_nothing_inside():
    _, _, layer = make_layer(True)
    with tg.no_trace():
        out = layer(tg.node(3.0), 2)
    assert out.data == 14.0 and out.is_leaf
    assert inner_graph(out) is None


def test_trace_inside_call_returning_nodes_in_a_container_gets_their_values():
    @tg.bundle(trace_inside=True)
    def split(x):
        return x + 1, x * 2

    x = tg.node(3)
    out = split(x)
    assert out.data == (4, 6)
    assert len(inner_graph(out).outputs) == 2


def test_failed_trace_inside_call_keeps_its_inner_graph_and_reaches_the_parameter():
    w = tg.parameter(0.0, name="w")

    @tg.bundle(trace_inside=True)
    def ratio(x):
        return x / w

    with pytest.raises(tg.ExecutionError) as info:
        ratio(tg.node(1.0, name="x"))
    error = info.value.node
    assert isinstance(error.exception, ZeroDivisionError)
    assert id(w) in ids(error.parents)
    (failed,) = inner_graph(error).outputs
    assert isinstance(failed, tg.ErrorNode) and failed.operator.name == "truediv"
    error.backward("division by zero")
    assert [f.value for f in w.feedback] == ["division by zero"]


def test_value_read_inside_a_trace_inside_call_is_an_inner_output():
    w = tg.parameter(2.0, name="w")

    @tg.bundle(trace_inside=True)
    def sign(x):
        return "big" if x * w > 5 else "small"

    out = sign(tg.node(3.0))
    assert out.data == "big"
    (decided,) = inner_graph(out).outputs
    assert decided.operator.name == "gt"
    assert id(w) in ids(out.parents)


async def test_async_trace_inside_bundle_records_inside():
    w = tg.parameter(2.0, name="w")

    @tg.bundle(trace_inside=True)
    async def scale(x):
        await asyncio.sleep(0)
        return x * w

    out = await scale(tg.node(3.0))
    assert out.data == 6.0
    assert [n.operator.name for n in inner_graph(out).nodes] == ["mul"]
    assert id(w) in ids(out.parents)


def test_trainable_trace_inside_bundle_traces_its_new_code_inside():
    w = tg.parameter(2.0, name="w")

    @tg.bundle(trainable=True, trace_inside=True)
    def scale(x):
        return x * w

    scale.parameter.data = "def scale(x):\n    return x * w + 1\n"
    out = scale(tg.node(3.0))
    assert out.data == 7.0
    assert [n.operator.name for n in inner_graph(out).nodes] == ["mul", "add"]
    assert id(scale.parameter) in ids(out.parents) and id(w) in ids(out.parents)


def test_per_object_code_parameter_made_during_a_call_is_an_input_of_it():
    class Agent(tg.Module):
        @tg.bundle(trainable=True)
        def act(self, x):
            return x + 1

    for trace_inside in (False, True):
        agent = Agent()

        @tg.bundle(trace_inside=trace_inside)
        def run(x, agent=agent):
            return agent.act(x)

        out = run(tg.node(1))
        assert out.data == 2
        out.backward("fb")
        assert [f.value for f in agent.act.parameter.feedback] == ["fb"]


def test_inner_graph_lives_as_long_as_its_node():
    _, _, layer = make_layer(True)
    out = layer(tg.node(3.0), 2)
    inner_ref = weakref.ref(inner_graph(out).nodes[0])
    del out
    gc.collect()
    assert inner_ref() is None


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs the jax extra")
def test_jax_replay_of_a_trace_inside_bundle_runs_its_body_once_per_trace():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from tracegrad.optimizers.jax import compile as compile_loss

    runs = []

    @tg.bundle
    def mean(v):
        return jnp.mean(v)

    @tg.bundle(trace_inside=True)
    def predict(w, x):
        runs.append(1)
        return mean((x * w - 1.0) ** 2)  # node operators and bundles: works on nodes and on arrays

    w = tg.node(jnp.array([1.0, 2.0]), trainable=True, name="w")
    x = tg.node(jnp.array([1.0, 0.5]), name="x")
    loss = predict(w, x)
    assert [n.operator.name for n in inner_graph(loss).nodes] == ["mul", "sub", "pow", "mean"]
    runs.clear()
    compiled = compile_loss(loss)
    assert [op.op_name for op in compiled.program.ops] == ["predict"]
    grad = jax.grad(compiled.fn)(compiled.params, compiled.inputs)["w"]
    assert runs == [1]  # traced once by JAX; nothing inside is replayed on its own
    np.testing.assert_allclose(grad, jax.grad(lambda v: jnp.mean((x.data * v - 1.0) ** 2))(w.data), rtol=1e-6)
