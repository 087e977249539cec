"""A failed load changes nothing: parameters, step count, memory and optax state stay as they were."""

from __future__ import annotations

import json

import pytest

import tracegrad as tg
from tracegrad.llm import LLM, ScriptedTransport


class Agent(tg.Module):
    def __init__(self) -> None:
        self.prompt = tg.parameter("Answer briefly.", tg.Text())
        self.temperature = tg.parameter(0.5, tg.Number(0, 2))


def llm_optimizer(kind: str, params) -> tg.Optimizer:
    llm = LLM("test/model", transport=ScriptedTransport([]), cache=False)
    return {"OptoPrime": tg.OptoPrime, "OPRO": tg.OPRO, "OptoPrimeMulti": tg.OptoPrimeMulti}[kind](
        params, llm=llm, memory_size=2
    )


def with_memory(opt: tg.Optimizer) -> tg.Optimizer:
    state = opt.state_dict()
    state.update(step_count=3, memory=[{"values": {"prompt": "old"}, "feedback": "too long"}])
    opt.load_state_dict(state)
    return opt


def snapshot(agent: tg.Module, opt: tg.Optimizer) -> str:
    return json.dumps([agent.state_dict(), opt.state_dict(), opt.step_count], sort_keys=True, default=repr)


def saved_with(tmp_path, agent, opt, change) -> str:
    """A checkpoint of ``agent`` and ``opt`` whose optimizer state ``change`` spoils."""
    opt.save(tmp_path / "ok.json", agent)
    payload = json.loads((tmp_path / "ok.json").read_text())
    payload["parameters"]["prompt"] = "A new prompt."  # a valid change that must not land
    change(payload["extra"]["optimizer"])
    (tmp_path / "bad.json").write_text(json.dumps(payload))
    return tmp_path / "bad.json"


BAD_STATES = {
    "a memory entry without feedback": lambda s: s["memory"].append({"values": {"prompt": "x"}}),
    "memory that is not a list": lambda s: s.update(memory={"values": {}}),
    "a memory entry that is a string": lambda s: s["memory"].insert(0, "remember this"),
    "an objective that is a number": lambda s: s.update(objective=42),
    "an objective that is a list": lambda s: s.update(objective=["be", "brief"]),
    "a negative step count": lambda s: s.update(step_count=-1),
    "a step count that is text": lambda s: s.update(step_count="3"),
    "another optimizer's type": lambda s: s.update(type="JaxOptimizer"),
}


@pytest.mark.parametrize("kind", ["OptoPrime", "OPRO", "OptoPrimeMulti"])
@pytest.mark.parametrize("bad", list(BAD_STATES), ids=list(BAD_STATES))
def test_a_refused_llm_optimizer_load_changes_nothing(tmp_path, kind, bad):
    agent = Agent()
    opt = with_memory(llm_optimizer(kind, agent))
    before = snapshot(agent, opt)
    path = saved_with(tmp_path, agent, opt, BAD_STATES[bad])
    with pytest.raises(tg.TracegradError):
        opt.load(path, agent)
    assert snapshot(agent, opt) == before
    with pytest.raises(tg.TracegradError):
        opt.load_state_dict(json.loads(path.read_text())["extra"]["optimizer"])
    assert snapshot(agent, opt) == before


def test_a_module_load_with_one_invalid_value_assigns_none(tmp_path):
    agent = Agent()
    agent.save(tmp_path / "agent.json")
    payload = json.loads((tmp_path / "agent.json").read_text())
    payload["parameters"].update(prompt="A new prompt.", temperature=7.0)  # 7 is out of bounds
    (tmp_path / "agent.json").write_text(json.dumps(payload))
    with pytest.raises(tg.InvalidValueError, match="temperature"):
        agent.load(tmp_path / "agent.json")
    assert agent.state_dict() == {"prompt": "Answer briefly.", "temperature": 0.5}


def jax_setup():
    jnp = pytest.importorskip("jax.numpy")
    optax = pytest.importorskip("optax")
    from tracegrad.optimizers.jax import JaxOptimizer

    class Model(tg.Module):
        def __init__(self) -> None:
            self.w = tg.node(jnp.array([0.5, -0.5]), trainable=True)
            self.prompt = tg.parameter("scale", tg.Text())

    model = Model()
    return model, JaxOptimizer([model.w], optax.adam(0.1))


def jax_snapshot(model, opt) -> str:
    values = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in model.state_dict().items()}
    return json.dumps([values, opt.state_dict(), opt.step_count], sort_keys=True)


JAX_BAD = {
    "a leaf of the wrong shape": lambda s: s["opt_state"]["leaves"][1].update(shape=[3], data=[0.0, 0.0, 0.0]),
    "a leaf of the wrong dtype": lambda s: s["opt_state"]["leaves"][1].update(dtype="int32", data=[0, 0]),
    "leaves that are not a list": lambda s: s["opt_state"].update(leaves=None),
    "a missing leaf": lambda s: s["opt_state"]["leaves"].pop(),
    "a leaf that is not an array": lambda s: s["opt_state"]["leaves"].__setitem__(0, "zero"),
}


@pytest.mark.parametrize("bad", list(JAX_BAD), ids=list(JAX_BAD))
def test_a_refused_jax_load_changes_neither_values_nor_optax_state(tmp_path, bad):
    model, opt = jax_setup()
    before = jax_snapshot(model, opt)
    with pytest.raises(tg.TracegradError):
        opt.load(saved_with_jax(tmp_path, model, opt, JAX_BAD[bad]), model)
    assert jax_snapshot(model, opt) == before


def saved_with_jax(tmp_path, model, opt, change):
    opt.save(tmp_path / "ok.json", model)
    payload = json.loads((tmp_path / "ok.json").read_text())
    payload["parameters"]["w"]["data"] = [9.0, 9.0]
    change(payload["extra"]["optimizer"])
    (tmp_path / "bad.json").write_text(json.dumps(payload))
    return tmp_path / "bad.json"


def test_a_hybrid_whose_second_part_is_refused_keeps_its_first_part(tmp_path):
    model, jax_opt = jax_setup()
    llm_opt = with_memory(llm_optimizer("OptoPrime", [model.prompt]))
    hybrid = tg.Hybrid(llm=llm_opt, jax=jax_opt)
    before = jax_snapshot(model, hybrid)

    def spoil_the_jax_part(state):
        state["optimizers"]["llm"]["memory"] = []  # valid: would clear the memory
        state["optimizers"]["jax"]["opt_state"]["leaves"] = []

    with pytest.raises(tg.TracegradError):
        hybrid.load(saved_with_jax(tmp_path, model, hybrid, spoil_the_jax_part), model)
    assert jax_snapshot(model, hybrid) == before
    assert len(llm_opt.memory) == 1 and llm_opt.step_count == 3
