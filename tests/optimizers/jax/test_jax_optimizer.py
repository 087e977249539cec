"""JaxOptimizer: the zero_feedback / backward / step loop, fit, bounds, rejection of
non-finite updates, and optimizer state through checkpoints."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegrad as tg
from tracegrad.nodes.array import Array
from tracegrad.optimizers.jax import JaxOptimizer

TARGET = jnp.array([1.0, -2.0, 0.5])


@tg.bundle
def distance(x, target):
    """Squared distance to the target."""
    return jnp.sum((x - target) ** 2)


@tg.bundle
def sqrt_sum(x):
    return jnp.sum(jnp.sqrt(x))


def loop(opt, forward, steps):
    reports = []
    for _ in range(steps):
        loss = forward()
        opt.zero_feedback()
        opt.backward(loss)
        reports.append(opt.step())
    return reports


def test_adam_converges_and_reports_loss_and_gradient_norm():
    x = tg.node(jnp.zeros(3), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.adam(0.1))
    reports = loop(opt, lambda: distance(x, tg.node(TARGET)), 150)
    first, last = reports[0], reports[-1]
    assert first.details["loss"] == pytest.approx(float(jnp.sum(TARGET**2)), rel=1e-5)
    assert first.details["grad_norm"] == pytest.approx(float(jnp.linalg.norm(2 * TARGET)), rel=1e-5)
    assert last.details["loss"] < 1e-3
    np.testing.assert_allclose(x.data, TARGET, atol=0.05)
    assert x.data.shape == (3,) and x.data.dtype == jnp.float32
    assert first.details["compiled"] and not last.details["compiled"]
    assert [u.name for u in last.updates] == ["x"] and last.changed
    assert opt.step_count == 150
    json.dumps(last.to_json())


def test_number_parameters_are_clipped_into_their_bounds_and_stay_floats():
    s = tg.node(0.5, trainable=True, name="s", kind=tg.Number(0.0, 1.0))
    free = tg.node(0.0, trainable=True, name="free")
    opt = JaxOptimizer([s, free], optax.sgd(1.0))

    @tg.bundle
    def objective(s, free):
        return -3.0 * s + (free - 2.0) ** 2

    loop(opt, lambda: objective(s, free), 1)
    assert s.data == 1.0 and isinstance(s.data, float)  # 0.5 + 3 clipped to 1.0
    assert free.data == pytest.approx(4.0) and isinstance(free.data, float)


def test_array_bounds_are_projected():
    w = tg.parameter(jnp.array([0.5, 0.5]), Array(shape=(2,), dtype="float32", low=0.0, high=1.0), name="w")
    opt = JaxOptimizer([w], optax.sgd(1.0))
    loop(opt, lambda: distance(w, tg.node(jnp.array([3.0, -3.0]))), 1)
    np.testing.assert_array_equal(w.data, [1.0, 0.0])


def test_non_finite_update_is_rejected_and_nothing_changes():
    x = tg.node(jnp.array([1.0, 4.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.adam(0.1))
    loop(opt, lambda: sqrt_sum(x), 1)
    good_value, good_state = x.data, opt.opt_state
    x.data = jnp.array([-1.0, 4.0])  # sqrt of a negative: NaN
    with pytest.raises(tg.InvalidValueError, match="not finite") as err:
        loop(opt, lambda: sqrt_sum(x), 1)
    assert err.value.parameter_name == "x"
    np.testing.assert_array_equal(x.data, [-1.0, 4.0])
    assert opt.opt_state is good_state
    assert opt.step_count == 1
    x.data = good_value
    with pytest.raises(tg.InvalidValueError):
        x.data = jnp.array([np.nan, 1.0])


@pytest.mark.parametrize(
    "param",
    [
        lambda: tg.node("a prompt", trainable=True, name="p"),
        lambda: tg.node(3, trainable=True, name="p"),
        lambda: tg.node(np.arange(3), trainable=True, name="p"),
    ],
)
def test_parameters_that_cannot_be_differentiated_are_refused(param):
    with pytest.raises(TypeError, match="Hybrid"):
        JaxOptimizer([param()], optax.sgd(0.1))


def test_transform_must_be_an_optax_transform():
    x = tg.node(jnp.zeros(2), trainable=True, name="x")
    with pytest.raises(TypeError, match="optax"):
        JaxOptimizer([x], 0.1)


def test_fit_equals_the_same_number_of_steps():
    def make():
        x = tg.node(jnp.array([0.3, -0.7, 2.0]), trainable=True, name="x")
        return x, JaxOptimizer([x], optax.adam(0.05))

    x1, o1 = make()
    for _ in range(20):
        o1.zero_feedback()
        o1.backward(distance(x1, tg.node(TARGET)))
        o1.step()
    for scan in (False, True):
        x2, o2 = make()
        o2.backward(distance(x2, tg.node(TARGET)))
        report = o2.fit(20, scan=scan)
        np.testing.assert_allclose(x2.data, x1.data, rtol=1e-6, atol=1e-6)
        assert o2.step_count == 20
        assert len(report.details["losses"]) == 20
        assert report.details["losses"][0] == pytest.approx(float(jnp.sum((jnp.array([0.3, -0.7, 2.0]) - TARGET) ** 2)))
        assert report.details["loss"] < report.details["losses"][0]
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), o1.opt_state, o2.opt_state)
    with pytest.raises(ValueError):
        o2.fit(0)


def test_fit_rejects_a_diverging_run():
    x = tg.node(jnp.array([1.0, 4.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(10.0))
    opt.backward(sqrt_sum(x))  # the first step takes x[0] below zero, the second gives NaN
    with pytest.raises(tg.InvalidValueError, match="not finite"):
        opt.fit(5)
    np.testing.assert_array_equal(x.data, [1.0, 4.0])
    assert opt.step_count == 0


def test_step_without_a_loss_changes_nothing_and_feedback_outputs_are_used():
    x = tg.node(jnp.array([1.0, 2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.5))
    report = opt.step()
    assert report.status == "no_feedback" and not report.changed
    np.testing.assert_allclose(x.data, [1.0, 2.0])
    with pytest.raises(tg.TracegradError, match=r"backward\(loss\)"):
        opt.fit(3)
    loss = distance(x, tg.node(jnp.zeros(2)))
    loss.backward("a numeric loss given feedback the opto way")
    opt.step()
    np.testing.assert_allclose(x.data, [0.0, 0.0])


def test_losses_of_several_backward_calls_add_up():
    x = tg.node(jnp.array([1.0, 2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(1.0))
    opt.backward(distance(x, tg.node(jnp.zeros(2))))
    opt.backward(distance(x, tg.node(jnp.ones(2))))
    report = opt.step()
    assert report.details["loss"] == pytest.approx(5.0 + 1.0)
    np.testing.assert_allclose(x.data, [1.0 - 2.0 - 0.0, 2.0 - 4.0 - 2.0])


def test_backward_with_feedback_also_propagates_it():
    x = tg.node(jnp.array([1.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    loss = distance(x, tg.node(jnp.zeros(1)))
    opt.backward(loss)
    assert x.feedback == []
    opt.backward(loss, "too large")
    assert [f.value for f in x.feedback] == ["too large"]
    opt.zero_feedback()
    assert x.feedback == []
    assert opt.step().status == "no_feedback"


def test_feedback_on_outputs_that_are_not_numbers_is_an_error():
    x = tg.node(jnp.array([1.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    tg.apply(str, x).backward("text feedback only")
    with pytest.raises(tg.TracegradError, match="not numbers"):
        opt.step()


def test_log_path_gets_one_json_line_per_step(tmp_path):
    x = tg.node(jnp.array([1.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1), log_path=tmp_path / "log.jsonl")
    loop(opt, lambda: distance(x, tg.node(jnp.zeros(1))), 2)
    opt.fit(3)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[-1])["details"]["steps"] == 3


# -- checkpoints ---------------------------------------------------------------------------


@tg.model
class Fit:
    def __init__(self):
        self.w = tg.node(jnp.array([0.1, 0.2, 0.3]), trainable=True)
        self.b = tg.node(0.0, trainable=True)

    def forward(self, target):
        return distance(self.w + self.b, target)


def make_run():
    model = Fit()
    opt = JaxOptimizer(model, optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.05)))
    return model, opt


def train(model, opt, steps):
    for _ in range(steps):
        opt.zero_feedback()
        opt.backward(model(tg.node(TARGET)))
        opt.step()


def test_optax_state_round_trips_through_a_module_checkpoint(tmp_path):
    model, opt = make_run()
    train(model, opt, 3)
    model.save(tmp_path / "ckpt.json", extra={"optimizer": opt.state_dict()})

    fresh_model, fresh_opt = make_run()
    fresh_model.load(tmp_path / "ckpt.json")
    fresh_opt.load_state_dict(tg.read_checkpoint(tmp_path / "ckpt.json")["extra"]["optimizer"])
    saved_leaves = jax.tree_util.tree_leaves(opt.opt_state)
    for a, b in zip(saved_leaves, jax.tree_util.tree_leaves(fresh_opt.opt_state), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert fresh_opt.step_count == 3

    train(model, opt, 2)
    train(fresh_model, fresh_opt, 2)
    np.testing.assert_array_equal(np.asarray(fresh_model.w.data), np.asarray(model.w.data))
    assert fresh_model.b.data == model.b.data


def test_save_and_load_helpers_with_and_without_a_module(tmp_path):
    model, opt = make_run()
    train(model, opt, 2)
    opt.save(tmp_path / "with.json", model)
    opt.save(tmp_path / "without.json")
    for path, use_module in ((tmp_path / "with.json", True), (tmp_path / "without.json", False)):
        fresh_model, fresh_opt = make_run()
        fresh_opt.load(path, fresh_model if use_module else None)
        np.testing.assert_array_equal(np.asarray(fresh_model.w.data), np.asarray(model.w.data))
        assert fresh_opt.step_count == 2


def test_loading_a_mismatched_state_changes_nothing(tmp_path):
    model, opt = make_run()
    train(model, opt, 2)
    state = opt.state_dict()

    other = tg.node(jnp.zeros(3), trainable=True, name="w")
    sgd = JaxOptimizer([other], optax.sgd(0.1))
    with pytest.raises(tg.TracegradError, match="parameters"):
        sgd.load_state_dict(state)

    momentum = JaxOptimizer(Fit(), optax.sgd(0.1, momentum=0.9))  # another optax state
    before = momentum.opt_state
    with pytest.raises(tg.TracegradError, match="optimizer state"):
        momentum.load_state_dict(state)
    assert momentum.opt_state is before

    # a checkpoint whose parameters are invalid leaves the optimizer state as it was
    opt.save(tmp_path / "ckpt.json", model)
    payload = tg.read_checkpoint(tmp_path / "ckpt.json")
    payload["parameters"]["w"]["shape"] = [1, 3]
    (tmp_path / "bad.json").write_text(json.dumps(payload))
    fresh_model, fresh_opt = make_run()
    before = fresh_opt.opt_state
    with pytest.raises(tg.InvalidValueError):
        fresh_opt.load(tmp_path / "bad.json", fresh_model)
    assert fresh_opt.step_count == 0
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(fresh_opt.opt_state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


class Axis(tg.Module):
    def __init__(self, start):
        self.w = tg.node(jnp.array(start), trainable=True)


class TwoAxes(tg.Module):
    def __init__(self):
        self.x = Axis([1.0, 2.0])
        self.y = Axis([-1.0, 3.0])


def two_axes_opt():
    """Two instances of one module class under one optimizer (also built in a fresh process)."""
    axes = TwoAxes()
    return axes, JaxOptimizer(axes, optax.adam(0.1))


def test_two_instances_of_one_module_class_optimized_together(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    axes, opt = two_axes_opt()
    assert list(opt.names) == ["x.w", "y.w"]
    loop(opt, lambda: distance(axes.x.w, tg.node(jnp.zeros(2))) + distance(axes.y.w, tg.node(jnp.ones(2))), 3)
    assert set(opt.state_dict()["parameters"]) == {"x.w", "y.w"}
    opt.save(tmp_path / "axes.json", axes)
    script = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_jax_optimizer import two_axes_opt
axes, opt = two_axes_opt()
opt.load({str(tmp_path / "axes.json")!r}, axes)
print(json.dumps({{"state": axes.state_dict(), "opt": opt.state_dict()}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"state": axes.state_dict(), "opt": opt.state_dict()}


def test_fit_report_is_short_to_print():
    x = tg.node(jnp.array([1.0, 2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.01))
    opt.backward(distance(x, tg.node(jnp.zeros(2))))
    report = opt.fit(100)
    assert len(report.details["losses"]) == 100 and len(repr(report)) < 200
    assert report.summary().startswith("step 1 (JaxOptimizer): updated") and opt.step_count == 100
