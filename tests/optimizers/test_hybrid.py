"""Hybrid: one backward and one step update array parameters by gradient and the other
parameters by a text optimizer; ownership, all-or-nothing steps and state."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tracegrad as tg
from tracegrad.optimizers import Hybrid, Optimizer, Proposal


class Appender(Optimizer):
    """A fake text optimizer: appends the latest feedback to each text parameter."""

    def __init__(self, parameters, *, fail: bool = False):
        super().__init__(parameters)
        self.fail = fail

    def propose(self, *, sample: int = 0) -> Proposal:
        if self.fail:
            raise RuntimeError("the model is down")
        values = {name: f"{p.data} [{p.feedback[-1].value}]" for name, p in self.names.items() if p.feedback}
        return self._proposal(values, self._report("updated", details={"seen": float(len(values))}))


def test_importing_hybrid_does_not_import_jax():
    code = "import sys, tracegrad.optimizers.hybrid; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_each_parameter_belongs_to_exactly_one_optimizer():
    a = tg.node("a", trainable=True, name="a")
    b = tg.node("b", trainable=True, name="b")
    with pytest.raises(ValueError, match="exactly one"):
        Hybrid(Appender([a, b]), Appender([b]))
    with pytest.raises(ValueError):
        Hybrid()
    h = Hybrid(Appender([a]), Appender([b]))
    assert sorted(h.optimizers) == ["Appender", "Appender2"]
    assert h.optimizer_of(b) is h.optimizers["Appender2"]
    with pytest.raises(KeyError):
        h.optimizer_of(tg.node("c", trainable=True, name="c"))


# -- with the JAX optimizer -------------------------------------------------------------------

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from tracegrad.optimizers.jax import JaxOptimizer  # noqa: E402

TARGET = jnp.array([2.0, -4.0])


@tg.bundle
def scale_of(instruction):
    """How strongly to scale: 2 when the instruction says 'double'."""
    return 2.0 if "double" in instruction else 1.0


@tg.bundle
def error(w, scale):
    """Squared error of the scaled weights."""
    return jnp.sum((w * scale - TARGET) ** 2)


def setup():
    instruction = tg.node("scale the weights", trainable=True, name="instruction")
    w = tg.node(jnp.array([0.0, 0.0]), trainable=True, name="w")
    return instruction, w


def forward(instruction, w):
    return error(w, scale_of(instruction))


def test_one_step_updates_both_kinds():
    instruction, w = setup()
    hybrid = Hybrid(llm=Appender([instruction]), jax=JaxOptimizer([w], optax.sgd(0.1)))
    loss = forward(instruction, w)
    hybrid.zero_feedback()
    hybrid.backward(loss, "use double")
    report = hybrid.step()
    assert instruction.data == "scale the weights [use double]"
    # the gradient of sum((w - t)^2) at w = 0 with scale 1 is -2t
    np.testing.assert_allclose(w.data, 0.1 * 2 * TARGET, rtol=1e-6)
    assert {u.name for u in report.updates} == {"instruction", "w"}
    assert report.parts["jax"].details["loss"] == pytest.approx(20.0)
    assert report.parts["llm"].details["seen"] == 1
    assert report.status == "updated" and report.parts["jax"].status == "updated"
    assert "[jax]" in report.summary() and "instruction" in report.summary()
    assert hybrid.step_count == 1
    assert hybrid.optimizers["jax"].step_count == hybrid.optimizers["llm"].step_count == 1
    json.dumps(report.to_json())

    # the next forward pass uses the new instruction: scale 2, a new graph structure
    loss = forward(instruction, w)
    assert scale_of(instruction).data == 2.0
    hybrid.zero_feedback()
    hybrid.backward(loss, "fine")
    hybrid.step()
    assert instruction.data.endswith("[fine]")


def test_loss_can_differ_from_the_output_given_feedback():
    instruction, w = setup()
    hybrid = Hybrid(llm=Appender([instruction]), jax=JaxOptimizer([w], optax.sgd(0.1)))
    loss = forward(instruction, w)
    summary = tg.apply(lambda v: f"loss {float(v):.1f}", loss, name="summary")
    with pytest.raises(TypeError, match="loss="):
        hybrid.backward(summary, "too high")
    hybrid.backward(summary, "too high", loss=loss)
    hybrid.step()
    assert instruction.data.endswith("[too high]")
    assert not np.allclose(w.data, 0.0)


def test_a_failing_part_means_nothing_is_applied():
    instruction, w = setup()
    jax_opt = JaxOptimizer([w], optax.adam(0.1))
    hybrid = Hybrid(llm=Appender([instruction], fail=True), jax=jax_opt)
    hybrid.backward(forward(instruction, w), "use double")
    state = jax_opt.opt_state
    with pytest.raises(RuntimeError, match="down"):
        hybrid.step()
    np.testing.assert_array_equal(w.data, [0.0, 0.0])
    assert jax_opt.opt_state is state and jax_opt.step_count == 0
    assert hybrid.step_count == 0


def test_a_failed_step_is_neither_counted_nor_logged(tmp_path):
    instruction, w = setup()
    log = tmp_path / "jax.jsonl"
    jax_opt = JaxOptimizer([w], optax.adam(0.1), log_path=log)
    hybrid = Hybrid(llm=Appender([instruction], fail=True), jax=jax_opt)
    hybrid.backward(forward(instruction, w), "use double")
    with pytest.raises(RuntimeError, match="down"):
        hybrid.step()
    assert not log.exists() or log.read_text() == ""


def test_by_kind_routes_arrays_and_numbers_to_jax():
    instruction, w = setup()
    gain = tg.node(0.5, trainable=True, name="gain")
    ids = tg.node(np.arange(2), trainable=True, name="ids")  # an integer array: not differentiable
    hybrid = Hybrid.by_kind(
        [instruction, w, gain, ids], llm=lambda ps: Appender(ps), jax=lambda ps: JaxOptimizer(ps, optax.sgd(0.1))
    )
    assert sorted(p.name for p in hybrid.optimizers["jax"].parameters) == ["gain", "w"]
    assert sorted(p.name for p in hybrid.optimizers["llm"].parameters) == ["ids", "instruction"]
    to_llm = Hybrid.by_kind([w, gain], llm=Appender, jax=lambda ps: JaxOptimizer(ps, optax.sgd(0.1)), numbers="llm")
    assert [p.name for p in to_llm.optimizers["llm"].parameters] == ["gain"]
    with pytest.raises(ValueError):
        Hybrid.by_kind([w], llm=Appender, jax=Appender, numbers="both")


def test_state_round_trips_through_a_checkpoint(tmp_path):
    def make():
        instruction, w = setup()
        return instruction, w, Hybrid(llm=Appender([instruction]), jax=JaxOptimizer([w], optax.adam(0.1)))

    instruction, w, hybrid = make()
    for _ in range(2):
        hybrid.zero_feedback()
        hybrid.backward(forward(instruction, w), "ok")
        hybrid.step()
    hybrid.save(tmp_path / "h.json")
    instruction2, w2, hybrid2 = make()
    hybrid2.load(tmp_path / "h.json")
    assert instruction2.data == instruction.data
    np.testing.assert_array_equal(np.asarray(w2.data), np.asarray(w.data))
    assert hybrid2.step_count == 2 and hybrid2.optimizers["jax"].step_count == 2
    for a, b in zip(
        jax.tree_util.tree_leaves(hybrid.optimizers["jax"].opt_state),
        jax.tree_util.tree_leaves(hybrid2.optimizers["jax"].opt_state),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(tg.TracegradError):
        hybrid2.load_state_dict({**hybrid.state_dict(), "optimizers": {"jax": {}}})
    with pytest.raises(tg.TracegradError):
        hybrid2.load_state_dict({"type": "Other"})


def test_with_optoprime_driven_by_a_scripted_model():
    instruction, w = setup()
    reply = json.dumps(
        {"reasoning": "the target is twice as large", "answer": None, "suggestion": {"instruction": "double it"}}
    )
    transport = tg.ScriptedTransport([reply])
    llm = tg.LLM("test/model", transport=transport, cache=False)
    hybrid = Hybrid(llm=tg.OptoPrime([instruction], llm=llm), jax=JaxOptimizer([w], optax.sgd(0.1)))
    loss = forward(instruction, w)
    hybrid.zero_feedback()
    hybrid.backward(loss, f"the error is {float(loss.data):.1f}; it should be 0")
    report = hybrid.step()
    assert instruction.data == "double it"
    np.testing.assert_allclose(w.data, 0.1 * 2 * TARGET, rtol=1e-6)
    assert report.parts["llm"].optimizer == "OptoPrime"
    assert report.parts["llm"].status == "updated"
    assert report.parts["llm"].reasoning == "the target is twice as large"
    assert [u.name for u in report.parts["llm"].updates] == ["instruction"]
    json.dumps(report.to_json())
    assert "the error is 20.0" in transport.requests[0].messages[-1]["content"]


def test_a_proposal_that_is_not_applied_changes_nothing():
    instruction, w = setup()
    jax_opt = JaxOptimizer([w], optax.adam(0.1))
    hybrid = Hybrid(llm=Appender([instruction]), jax=jax_opt)
    hybrid.backward(forward(instruction, w), "use double")
    state, before = jax_opt.opt_state, hybrid.state_dict()
    proposal = hybrid.propose()
    assert sorted(proposal.values) == ["instruction", "w"]
    assert proposal.report.parts["llm"].updates[0].new == "scale the weights [use double]"
    assert instruction.data == "scale the weights"
    np.testing.assert_array_equal(w.data, [0.0, 0.0])
    assert jax_opt.opt_state is state and hybrid.state_dict() == before
    assert hybrid.step_count == jax_opt.step_count == 0
    hybrid.apply(proposal)
    assert hybrid.step_count == jax_opt.step_count == 1
    with pytest.raises(tg.TracegradError, match="propose again"):
        hybrid.apply(proposal)  # made at an earlier step


def test_an_invalid_value_of_one_part_applies_no_part():
    instruction = tg.node(
        "scale the weights", trainable=True, name="instruction", kind=tg.Choice(("a", "b", "scale the weights"))
    )
    w = tg.node(jnp.array([0.0, 0.0]), trainable=True, name="w")
    jax_opt = JaxOptimizer([w], optax.sgd(0.1))
    hybrid = Hybrid(llm=Appender([instruction]), jax=jax_opt)
    hybrid.backward(forward(instruction, w), "use double")
    with pytest.raises(tg.InvalidValueError, match="instruction"):
        hybrid.step()  # the appended text is not one of the choices
    np.testing.assert_array_equal(w.data, [0.0, 0.0])
    assert hybrid.step_count == jax_opt.step_count == 0


class Scaler(tg.Module):
    """One instance per axis: each holds an instruction and weights of the same names."""

    def __init__(self):
        self.instruction = tg.node("scale the weights", trainable=True)
        self.w = tg.node(jnp.array([0.0, 0.0]), trainable=True)


class Pair(tg.Module):
    def __init__(self):
        self.first = Scaler()
        self.second = Scaler()


def test_two_instances_of_one_module_class_optimized_together(tmp_path):
    pair, hybrid = make_pair()
    assert sorted(hybrid.names) == ["first.instruction", "first.w", "second.instruction", "second.w"]
    loss = forward(pair.first.instruction, pair.first.w) + forward(pair.second.instruction, pair.second.w)
    hybrid.backward(loss, "use double")
    report = hybrid.step()
    assert {u.name for u in report.updates if u.changed} == set(hybrid.names)
    hybrid.save(tmp_path / "pair.json", pair)
    script = f"""
import json, sys
sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
import numpy as np
from test_hybrid import make_pair
pair, hybrid = make_pair()
hybrid.load({str(tmp_path / "pair.json")!r}, pair)
print(json.dumps({{"state": pair.state_dict(), "steps": hybrid.step_count}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {"state": pair.state_dict(), "steps": 1}


def make_pair():
    """A fresh ``Pair`` and its Hybrid (also used by the fresh process above)."""
    pair = Pair()
    return pair, Hybrid.by_kind(pair, llm=Appender, jax=lambda ps: JaxOptimizer(ps, optax.sgd(0.1)))
