"""Conformance suite: the properties every optimizer must have (optuna's idea, for optimizers).

Each case builds a small problem with fresh parameters and one optimizer over them:

* ``OptoPrime`` and ``OPRO`` driven by a scripted model that proposes a valid new value
  for every variable the request shows it (names parsed from the ``#Variables``
  section, kinds looked up among the optimizer's parameters);
* ``JaxOptimizer`` (``optax.sgd`` and ``optax.adam``) on a tiny array + number problem;
* ``Hybrid``: a scripted ``OptoPrime`` on a text parameter and a ``JaxOptimizer`` on an
  array.

Every case also holds one *idle* parameter that the step has no reason to change (not
part of the output the feedback is given to). The JAX cases are skipped without the
``jax`` extra; the LLM cases need no JAX. Nothing reaches the network.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import importlib.util
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad.optimizers.base import STATUSES

Hybrid, OptoPrime, OPRO, LLM, LLMCallError = tg.Hybrid, tg.OptoPrime, tg.OPRO, tg.LLM, tg.LLMCallError
RetryPolicy, ScriptedTransport = tg.RetryPolicy, tg.ScriptedTransport

HAVE_JAX = importlib.util.find_spec("jax") is not None and importlib.util.find_spec("optax") is not None


# -- helpers -------------------------------------------------------------------------------


def values(params) -> str:
    """The parameters' values as canonical JSON (arrays included)."""
    return json.dumps({p.name: p.kind.to_json(p.data) for p in params}, sort_keys=True)


def as_json(param, value) -> str:
    return json.dumps(param.kind.to_json(value), sort_keys=True)


def state_json(opt) -> str:
    return json.dumps(opt.state_dict(), sort_keys=True)


def propose(param) -> Any:
    """A valid value of ``param``'s kind that differs from its current one."""
    kind, value = param.kind, param.data
    if isinstance(kind, tg.Choice):
        options = list(kind.options)
        return options[(options.index(value) + 1) % len(options)]
    if isinstance(kind, (tg.Number, tg.Integer)):
        step = 1 if isinstance(kind, tg.Integer) else 0.5
        if kind.high is None or value + step <= kind.high:
            return value + step
        return value - step
    if isinstance(kind, tg.Text):
        return f"{value} (revised)"
    if getattr(kind, "name", "") == "array":
        return value + 1.0
    raise AssertionError(f"no proposal for a {kind!r}")


_VARIABLES = re.compile(r"(?:^|\n)#Variables\n(.*?)(?=\n#[A-Z][A-Za-z]*\n|\Z)", re.DOTALL)
_NAME = re.compile(r"^([A-Za-z_]\w*) ?=", re.MULTILINE)


def shown_variables(prompt: str) -> list[str]:
    """The variable names in a request's ``#Variables`` section."""
    match = _VARIABLES.search(prompt)
    assert match, f"the request shows no #Variables section:\n{prompt}"
    return _NAME.findall(match.group(1))


class ScriptedModel:
    """A model that suggests a valid new value for every variable it is shown.

    ``params`` maps the names the model may be shown to parameters (for their kinds);
    with ``down = True`` the provider fails (a connection error on every try).
    """

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.down = False
        self.transport = ScriptedTransport(self._answer)
        retry = RetryPolicy(max_retries=1, initial_wait=0.0, jitter=0.0, sleep=lambda _s: None)
        self.llm = LLM("scripted/model", transport=self.transport, cache=False, retry=retry)

    def _answer(self, request):
        if self.down:
            return ConnectionError("the provider is unreachable")
        names = shown_variables(request.messages[1]["content"])
        assert names and set(names) <= set(self.params), (names, sorted(self.params))
        suggestion = {n: propose(self.params[n]) for n in names}
        return json.dumps({"reasoning": "try other values", "answer": None, "suggestion": suggestion})


# -- the problems --------------------------------------------------------------------------


@tg.bundle
def compose(prompt, scale, k, mode):
    """Joins the settings into one instruction line."""
    return f"{prompt} | scale={scale} k={k} mode={mode}"


@tg.bundle
def sq_error(w, b, x, target):
    """Squared error of the affine map w * x + b against the target."""
    import jax.numpy as jnp

    return jnp.sum((w * x + b - target) ** 2)


@tg.bundle
def offset_of(instruction):
    """1 when the instruction asks to shift, else 0."""
    return 1.0 if "shift" in instruction else 0.0


class Setup:
    """One built case: ``opt`` over ``params``; ``feedback()`` runs the workflow and
    calls ``opt.backward``; ``fail(mode)`` makes the next step fail."""

    def __init__(self, opt, params, idle) -> None:
        self.opt = opt
        self.params = params
        self.idle = idle

    def feedback(self) -> None:
        raise NotImplementedError

    def fail(self, mode: str) -> None:
        raise NotImplementedError

    def recover(self) -> None:
        """Remove the cause of ``fail``."""
        raise NotImplementedError


class LLMSetup(Setup):
    def __init__(self, cls, log_path=None) -> None:
        self.prompt = tg.parameter("Summarize the text.", tg.Text(), name="prompt")
        self.scale = tg.parameter(2.0, tg.Number(0, 10), name="scale")
        self.k = tg.parameter(3, tg.Integer(1, 5), name="k")
        self.mode = tg.parameter("fast", tg.Choice(("fast", "careful")), name="mode")
        idle = tg.parameter("unused", tg.Text(), name="idle")
        params = [self.prompt, self.scale, self.k, self.mode, idle]
        self.model = ScriptedModel()
        opt = cls(params, llm=self.model.llm, log_path=log_path)
        self.model.params = {p.name: p for p in opt.parameters}
        super().__init__(opt, params, idle)

    def feedback(self) -> None:
        out = compose(self.prompt, self.scale, self.k, self.mode)
        self.opt.backward(out, "Too vague: be more specific.")

    def fail(self, mode: str) -> None:
        assert mode == "model_error"
        self.model.down = True

    def recover(self) -> None:
        self.model.down = False


class JaxSetup(Setup):
    def __init__(self, transform_name: str, log_path=None) -> None:
        jnp = pytest.importorskip("jax.numpy")
        optax = pytest.importorskip("optax")
        from tracegrad.optimizers.jax import JaxOptimizer

        self.jnp = jnp
        self.w = tg.node(jnp.array([0.5, -0.5]), trainable=True, name="w")
        self.b = tg.parameter(0.1, tg.Number(-1, 1), name="b")
        idle = tg.node(jnp.array([0.0, 1.0]), trainable=True, name="idle")
        params = [self.w, self.b, idle]
        transform = {"sgd": optax.sgd(0.1), "adam": optax.adam(0.1)}[transform_name]
        self.inputs = jnp.array([1.0, 2.0])
        opt = JaxOptimizer(params, transform, log_path=log_path)
        super().__init__(opt, params, idle)

    def feedback(self) -> None:
        x = tg.node(self.inputs, name="x")
        loss = sq_error(self.w, self.b, x, tg.node(self.jnp.array([1.0, -1.0]), name="target"))
        self.opt.backward(loss, "the error is too large")

    def fail(self, mode: str) -> None:
        assert mode == "nan_loss"
        self.inputs = self.jnp.array([float("nan"), 2.0])

    def recover(self) -> None:
        self.inputs = self.jnp.array([1.0, 2.0])


class HybridSetup(Setup):
    def __init__(self, log_path=None) -> None:
        jnp = pytest.importorskip("jax.numpy")
        optax = pytest.importorskip("optax")
        from tracegrad.optimizers.jax import JaxOptimizer

        self.jnp = jnp
        self.instruction = tg.parameter("scale the weights", tg.Text(), name="instruction")
        self.w = tg.node(jnp.array([0.5, -0.5]), trainable=True, name="w")
        idle = tg.node(jnp.array([0.0, 1.0]), trainable=True, name="idle")
        self.model = ScriptedModel()
        self.inputs = jnp.array([1.0, 2.0])
        llm_opt = OptoPrime([self.instruction], llm=self.model.llm)
        self.model.params = {p.name: p for p in llm_opt.parameters}
        opt = Hybrid(llm=llm_opt, jax=JaxOptimizer([self.w, idle], optax.sgd(0.1)), log_path=log_path)
        super().__init__(opt, [self.instruction, self.w, idle], idle)

    def feedback(self) -> None:
        x = tg.node(self.inputs, name="x")
        loss = sq_error(self.w, offset_of(self.instruction), x, tg.node(self.jnp.array([1.0, -1.0]), name="target"))
        self.opt.backward(loss, "the error is too large")

    def fail(self, mode: str) -> None:
        if mode == "model_error":
            self.model.down = True
        else:
            assert mode == "nan_loss"
            self.inputs = self.jnp.array([float("nan"), 2.0])

    def recover(self) -> None:
        self.model.down = False
        self.inputs = self.jnp.array([1.0, 2.0])


class Case:
    """A named way to build a ``Setup``, with the failures it can be put through and the
    error each one is documented to raise."""

    def __init__(self, name: str, build, failures: dict[str, type[BaseException]]) -> None:
        self.name = name
        self.build = build
        self.failures = failures

    def __repr__(self) -> str:
        return self.name


# documented: LLM optimizers raise only errors of the model call itself (LLMCallError);
# JaxOptimizer raises InvalidValueError for a non-finite update; Hybrid re-raises the
# error of the optimizer that failed.
CASES = [
    Case("OptoPrime", lambda **kw: LLMSetup(OptoPrime, **kw), {"model_error": LLMCallError}),
    Case("OPRO", lambda **kw: LLMSetup(OPRO, **kw), {"model_error": LLMCallError}),
    Case("Jax-sgd", lambda **kw: JaxSetup("sgd", **kw), {"nan_loss": tg.InvalidValueError}),
    Case("Jax-adam", lambda **kw: JaxSetup("adam", **kw), {"nan_loss": tg.InvalidValueError}),
    Case(
        "Hybrid",
        lambda **kw: HybridSetup(**kw),
        {"model_error": LLMCallError, "nan_loss": tg.InvalidValueError},
    ),
]


def cases():
    """Every optimizer case, as test parameters named after the case."""
    return [pytest.param(c, id=c.name) for c in CASES]


def foreign_states(own_type: str) -> dict[str, dict]:
    """``state_dict()``s of optimizer types other than ``own_type``."""

    def llm():
        return LLM("scripted/model", transport=ScriptedTransport([]), cache=False)

    states = {
        "OptoPrime": OptoPrime([tg.parameter("a", name="a")], llm=llm()).state_dict(),
        "OPRO": OPRO([tg.parameter("a", name="a")], llm=llm()).state_dict(),
    }
    if HAVE_JAX:
        import jax.numpy as jnp
        import optax

        from tracegrad.optimizers.jax import JaxOptimizer

        w = tg.node(jnp.zeros(2), trainable=True, name="w")
        states["JaxOptimizer"] = JaxOptimizer([w], optax.sgd(0.1)).state_dict()
        states["Hybrid"] = Hybrid(
            llm=OptoPrime([tg.parameter("a", name="a")], llm=llm()),
            jax=JaxOptimizer([tg.node(jnp.zeros(2), trainable=True, name="w")], optax.sgd(0.1)),
        ).state_dict()
    states.pop(own_type, None)
    return states


# -- 1. a step without feedback ----------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
def test_step_without_feedback_changes_nothing_and_reports_it(case):
    s = case.build()
    before = values(s.params)
    report = s.opt.step()
    data = report.to_json()
    json.dumps(data)
    assert data["changed"] is False and not report.changed
    assert not any(u["old"] != u["new"] for u in data["updates"])
    assert values(s.params) == before


# -- 2. a step with feedback ----------------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
def test_step_with_feedback_changes_valid_values_and_reports_them(case):
    s = case.build()
    s.feedback()
    old = {p.name: as_json(p, p.data) for p in s.params}
    report = s.opt.step()
    new = {p.name: as_json(p, p.data) for p in s.params}
    changed = {name for name in old if old[name] != new[name]}
    assert changed, "a step with feedback changed no parameter"
    for p in s.params:
        p.kind.validate(p.data)  # raises if invalid
    by_param = {p.name: p for p in s.params}
    updates = {u.name: u for u in report.updates}
    assert len(updates) == len(report.updates), "a parameter is reported twice"
    assert changed <= set(updates), f"changed but not reported: {changed - set(updates)}"
    for name, u in updates.items():
        assert as_json(by_param[name], u.old) == old[name]
        assert as_json(by_param[name], u.new) == new[name]
    for name in changed:
        assert updates[name].changed is True
    data = report.to_json()
    json.dumps(data)
    assert data["changed"] is True and report.changed
    assert s.opt.step_count == 1


@pytest.mark.parametrize("case", cases())
def test_changed_is_false_for_values_the_step_left_alone(case):
    s = case.build()
    s.feedback()
    idle_before = as_json(s.idle, s.idle.data)
    report = s.opt.step()
    assert as_json(s.idle, s.idle.data) == idle_before  # nothing asked to change it
    by_param = {p.name: p for p in s.params}
    for u in report.updates:
        differs = as_json(by_param[u.name], u.old) != as_json(by_param[u.name], u.new)
        assert u.changed is differs, f"{u.name}: changed={u.changed}, values differ: {differs}"


@pytest.mark.parametrize("case", cases())
def test_report_numbers_the_step_like_step_count(case):
    s = case.build()
    for expected in (1, 2):
        s.opt.zero_feedback()
        s.feedback()
        report = s.opt.step()
        assert s.opt.step_count == expected
        assert report.step == expected


# -- 3. zero_feedback ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
def test_zero_feedback_clears_the_feedback(case):
    s = case.build()
    s.feedback()
    assert any(p.feedback for p in s.params)
    s.opt.zero_feedback()
    for p in s.params:
        assert p.feedback == []


# -- 4. state and checkpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
def test_state_round_trips_through_a_checkpoint(case, tmp_path):
    s = case.build()
    s.feedback()
    s.opt.step()
    state = s.opt.state_dict()
    assert json.loads(json.dumps(state)) == state
    path = tmp_path / "ckpt.json"
    s.opt.save(path)

    fresh = case.build()
    assert values(fresh.params) != values(s.params)  # the step changed something to restore
    fresh.opt.load(path)
    assert values(fresh.params) == values(s.params)
    assert state_json(fresh.opt) == json.dumps(state, sort_keys=True)
    assert fresh.opt.step_count == 1


# -- 5. another optimizer's state --------------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
def test_state_of_another_optimizer_type_is_refused(case, tmp_path):
    s = case.build()
    own_type = type(s.opt).__name__
    foreign = foreign_states(own_type)
    assert foreign
    # a checkpoint with other values than the fresh parameters have
    for p in s.params:
        p.data = propose(p)
    s.opt.save(tmp_path / "own.json")
    payload = json.loads((tmp_path / "own.json").read_text())

    target = case.build()
    before_values, before_state = values(target.params), state_json(target.opt)
    for other, state in foreign.items():
        with pytest.raises(tg.TracegradError):
            target.opt.load_state_dict(state)
        assert state_json(target.opt) == before_state, other
        payload["extra"]["optimizer"] = state
        path = tmp_path / f"{other}.json"
        path.write_text(json.dumps(payload))
        with pytest.raises(tg.TracegradError):
            target.opt.load(path)
        assert values(target.params) == before_values, other
        assert state_json(target.opt) == before_state, other


# -- 6. a failing step ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, failure",
    [pytest.param(c, f, id=f"{c.name}-{f}") for c in CASES for f in c.failures],
)
def test_a_failing_step_changes_nothing_and_raises_the_documented_error(case, failure, tmp_path):
    log = tmp_path / "steps.jsonl"
    s = case.build(log_path=log)
    s.fail(failure)
    s.feedback()
    before_values, before_state = values(s.params), state_json(s.opt)
    with pytest.raises(case.failures[failure]):
        s.opt.step()
    assert values(s.params) == before_values
    assert state_json(s.opt) == before_state
    assert s.opt.step_count == 0
    assert not log.exists() or log.read_text() == ""

    # the run can go on once the cause is gone
    s.recover()
    s.opt.zero_feedback()
    s.feedback()
    s.opt.step()
    assert values(s.params) != before_values and s.opt.step_count == 1


# -- 7. propose without apply ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from(["feedback", "propose", "apropose", "step", "zero"]), min_size=1, max_size=6))
def test_a_proposal_that_is_not_applied_changes_neither_parameters_nor_state(case, plan):
    import asyncio

    s = case.build()
    for action in plan:
        if action == "feedback":
            s.feedback()
        elif action == "zero":
            s.opt.zero_feedback()
        elif action == "step":
            s.opt.step()
        else:
            before_values, before_state, before_count = values(s.params), state_json(s.opt), s.opt.step_count
            proposal = s.opt.propose() if action == "propose" else asyncio.run(s.opt.apropose())
            assert proposal.status in STATUSES
            assert values(s.params) == before_values
            assert state_json(s.opt) == before_state
            assert s.opt.step_count == before_count
            for u in proposal.report.updates:  # the report shows what applying would do
                assert as_json(s.opt.parameter(u.name), u.old) == as_json(
                    s.opt.parameter(u.name), s.opt.parameter(u.name).data
                )


@pytest.mark.parametrize("case", cases())
def test_applying_a_proposal_is_a_step(case):
    s, t = case.build(), case.build()
    s.feedback()
    t.feedback()
    proposal = s.opt.propose()
    applied = s.opt.apply(proposal)
    stepped = t.opt.step()
    assert values(s.params) == values(t.params)
    assert state_json(s.opt) == state_json(t.opt)
    assert applied.status == stepped.status == "updated"
    assert [u.name for u in applied.updates] == [u.name for u in stepped.updates]


@pytest.mark.parametrize("case", cases())
def test_every_optimizer_reports_with_one_report_type(case):
    s = case.build()
    idle = s.opt.step()
    s.feedback()
    report = s.opt.step()
    for r in (idle, report):
        assert isinstance(r, tg.StepReport) and r.status in STATUSES
        assert r.summary().startswith(f"step {r.step} ({type(s.opt).__name__}): {r.status}")
        assert len(repr(r)) < 200
    assert idle.status == "no_feedback" and not idle.changed
    assert report.status == "updated" and report.changed


# -- 8. the step log ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases())
def test_log_path_gets_one_json_line_per_step(case, tmp_path):
    log = tmp_path / "logs" / "steps.jsonl"
    s = case.build(log_path=log)
    names = {p.name for p in s.params}
    for n in (1, 2):
        s.opt.zero_feedback()
        s.feedback()
        s.opt.step()
        lines = log.read_text(encoding="utf-8").splitlines()
        assert len(lines) == n
    for line in lines:
        entry = json.loads(line)
        assert entry["changed"] is True
        assert {u["name"] for u in entry["updates"]} <= names


def test_an_optimizer_accepts_a_single_parameter_and_refuses_a_non_parameter_clearly():
    llm = LLM("scripted/model", transport=ScriptedTransport([]), cache=False)
    p = tg.parameter("hello", name="greeting")
    assert OptoPrime(p, llm=llm).parameters == [p]
    for wrong in ("hello", tg.node("hello"), p + "!", 3):
        with pytest.raises(TypeError, match="pass a parameter, a list of parameters or a Module"):
            OptoPrime(wrong, llm=llm)
    with pytest.raises(TypeError, match="is not trainable"):
        OptoPrime([p, tg.node("x")], llm=llm)
