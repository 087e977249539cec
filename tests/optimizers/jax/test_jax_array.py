"""The Array parameter kind: inferred from arrays, shape and dtype kept, values checked,
saved and loaded exactly."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegrad as tg
from tracegrad.nodes.array import Array


def test_import_tracegrad_does_not_import_jax():
    code = "import sys, tracegrad as tg; tg.node(1.5, trainable=True); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("value", "shape", "dtype"),
    [
        (jnp.zeros((2, 3)), (2, 3), "float32"),
        (np.arange(4, dtype=np.int16), (4,), "int16"),
        (jnp.asarray(1.5), (), "float32"),
        (jnp.ones(2, dtype=jnp.bfloat16), (2,), "bfloat16"),
    ],
)
def test_kind_is_inferred_from_an_array(value, shape, dtype):
    p = tg.node(value, trainable=True, name="p")
    assert isinstance(p.kind, Array)
    assert p.kind.shape == shape
    assert p.kind.dtype == dtype
    assert isinstance(p.data, jax.Array)
    assert p.kind.name == "array"
    assert dtype in p.kind.describe()


def test_kind_by_name_converts_lists():
    p = tg.parameter([[1.0, 2.0], [3.0, 4.0]], "array", name="m")
    assert p.kind == Array(shape=(2, 2), dtype="float32")
    assert isinstance(p.data, jax.Array)


def test_updates_keep_shape_and_dtype():
    p = tg.node(jnp.zeros(3), trainable=True, name="w")
    p.data = [1, 2, 3]  # integers are fine for a float array: cast
    assert p.data.dtype == jnp.float32
    p.data = np.array([0.5, 0.25, 0.125], dtype=np.float64)
    assert p.data.dtype == jnp.float32
    p.data = "[4.0, 5.0, 6.0]"  # JSON text, as an LLM may suggest it
    np.testing.assert_array_equal(p.data, [4.0, 5.0, 6.0])


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([1.0, 2.0], "shape (3,)"),
        ([[1.0, 2.0, 3.0]], "shape (3,)"),
        ([1.0, float("nan"), 2.0], "non-finite"),
        ([1.0, float("inf"), 2.0], "non-finite"),
        ([True, False, True], "bool"),
        ("not numbers", "array of numbers"),
        ("[1, 2", "unparseable"),
        (None, "array of numbers"),
        ({"a": 1}, "array of numbers"),
        (["a", "b", "c"], "array of numbers"),
    ],
)
def test_invalid_values_are_rejected_and_the_old_value_kept(bad, reason):
    p = tg.node(jnp.array([1.0, 2.0, 3.0]), trainable=True, name="w")
    with pytest.raises(tg.InvalidValueError, match="w: ") as err:
        p.data = bad
    assert reason in err.value.reason
    np.testing.assert_array_equal(p.data, [1.0, 2.0, 3.0])


def test_integer_arrays_refuse_floats():
    p = tg.node(np.arange(3, dtype=np.int32), trainable=True, name="ids")
    with pytest.raises(tg.InvalidValueError, match="integer"):
        p.data = [0.5, 1.0, 2.0]
    p.data = [3, 4, 5]
    assert p.data.dtype == jnp.int32


def test_bounds():
    kind = Array(shape=(2,), dtype="float32", low=0.0, high=1.0)
    p = tg.parameter(jnp.array([0.2, 0.8]), kind, name="probs")
    with pytest.raises(tg.InvalidValueError, match=r"<= 1\.0"):
        p.data = [0.5, 1.5]
    with pytest.raises(tg.InvalidValueError, match=r">= 0\.0"):
        p.data = [-0.5, 0.5]
    assert "in [0.0, 1.0]" in kind.describe()
    with pytest.raises(ValueError):
        Array(low=1.0, high=0.0)
    with pytest.raises(ValueError):
        Array(dtype="str")


@pytest.mark.parametrize("dtype", ["float32", "int32", "bfloat16", "float16", "bool", "complex64"])
def test_json_round_trip_is_exact(dtype):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 3)) * 100
    value = jnp.asarray(values > 0 if dtype == "bool" else values + (1j * values if "complex" in dtype else 0)).astype(
        dtype
    )
    p = tg.node(value, trainable=True, name="a")
    data = p.kind.to_json(p.data)
    import json

    restored = p.kind.validate(p.kind.from_json(json.loads(json.dumps(data, allow_nan=False))))
    assert restored.dtype == p.data.dtype
    assert restored.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(restored), np.asarray(p.data))


def test_module_save_and_load_with_an_array(tmp_path):
    @tg.model
    class Net:
        def __init__(self):
            self.weights = tg.node(jnp.linspace(0.0, 1.0, 7, dtype=jnp.float32) / 3.0, trainable=True)
            self.scale = tg.node(0.5, trainable=True)

    net = Net()
    net.save(tmp_path / "net.json")
    fresh = Net()
    fresh.weights.data = jnp.zeros(7)
    fresh.load(tmp_path / "net.json")
    np.testing.assert_array_equal(np.asarray(fresh.weights.data), np.asarray(net.weights.data))
    assert fresh.weights.data.dtype == jnp.float32

    bad = tg.read_checkpoint(tmp_path / "net.json")
    bad["parameters"]["weights"]["shape"] = [1, 7]
    with pytest.raises(tg.InvalidValueError, match="weights"):
        fresh.load_state_dict(bad["parameters"])
    with pytest.raises(tg.InvalidValueError, match="not a saved array"):
        fresh.load_state_dict({**bad["parameters"], "weights": {"dtype": "float32"}})
