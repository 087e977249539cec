"""Arbitrary model output never crashes a step nor leaves a parameter with an invalid value."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad.llm import LLM, ScriptedTransport
from tracegrad.optimizers.llm.opro import OPRO
from tracegrad.optimizers.llm.optoprime import OptoPrime


@tg.bundle(trainable=True)
def combine(rate, steps, mode, note, table):
    """Mix the settings into one number."""
    return rate * steps + len(note) + len(table) + (mode == "fast")


RATE = tg.parameter(0.5, tg.Number(0, 1), name="rate")
STEPS = tg.parameter(3, tg.Integer(1, 9), name="steps")
MODE = tg.parameter("fast", tg.Choice(("fast", "slow")), name="mode")
NOTE = tg.parameter("hello", tg.Text(max_length=40), name="note")
TABLE = tg.parameter({"a": 1}, tg.Structure(dict[str, int]), name="table")
PARAMS = [RATE, STEPS, MODE, NOTE, TABLE, combine.parameter]
NAMES = [p.name for p in PARAMS]


def give_feedback(opt):
    """Run the workflow on the current values and give its output feedback (a step
    consumes the feedback it used)."""
    try:
        out = combine(RATE, STEPS, MODE, NOTE, TABLE)
    except tg.ExecutionError as err:
        out = err.node
    opt.zero_feedback()
    opt.backward(out, "The result should be 7.")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "0.3",
            "7",
            "slow",
            "def combine(rate, steps, mode, note, table):\n    return 1\n",
            "def combine(x):\n  return 1",
            "```python\nx=(\n```",
        ]
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
suggestions = st.dictionaries(st.sampled_from([*NAMES, "unknown", ""]) | st.text(max_size=8), json_values, max_size=6)
replies = st.builds(
    lambda reasoning, suggestion, answer: {"reasoning": reasoning, "answer": answer, "suggestion": suggestion},
    json_values,
    suggestions | json_values,
    json_values,
)


@st.composite
def model_outputs(draw):
    """A reply text: JSON of the right shape or not, wrapped in prose, cut short, or noise."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.text(max_size=200))
    data = json.dumps(draw(replies) if choice < 4 else draw(json_values), allow_nan=True)
    if choice == 2:
        return f"Here is my answer:\n```json\n{data}\n```\nThanks"
    if choice == 3:
        return data[: draw(st.integers(0, len(data)))]
    return data


def assert_all_valid():
    for p in PARAMS:
        assert p.kind.validate(p.value) == p.value, p.name


def _fuzz(optimizer_class, outputs):
    queue = list(outputs)
    transport = ScriptedTransport(lambda request: queue.pop(0) if queue else "no idea")
    opt = optimizer_class(PARAMS, llm=LLM("fuzz/model", transport=transport, cache=False), max_attempts=2)
    give_feedback(opt)
    before = {p.name: p.value for p in PARAMS}
    report = opt.step()
    assert_all_valid()
    if report.status != "updated":
        assert {p.name: p.value for p in PARAMS} == before
    json.dumps(report.to_json())


FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=300)


@FUZZ
@given(st.lists(model_outputs(), min_size=1, max_size=4))
def test_optoprime_survives_arbitrary_model_output(outputs):
    _fuzz(OptoPrime, outputs)


@FUZZ
@given(st.lists(model_outputs(), min_size=1, max_size=4))
def test_opro_survives_arbitrary_model_output(outputs):
    _fuzz(OPRO, outputs)


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=2500)
@given(st.lists(model_outputs(), min_size=1, max_size=4))
def test_optoprime_survives_thousands_of_model_outputs(outputs):
    _fuzz(OptoPrime, outputs)
