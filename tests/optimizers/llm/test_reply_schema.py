"""Each step asks for a reply whose schema knows the step's variables and their kinds."""

from __future__ import annotations

import json

import tracegrad as tg
from tracegrad.optimizers.llm.suggestions import REASONING_CHARS, reply_schema


def _step_schema(make_llm, params, out):
    out.backward("make it better")
    llm, transport = make_llm([json.dumps({"reasoning": "r", "suggestion": {}})])
    tg.OptoPrime(params, llm=llm).step()
    fmt = transport.requests[0].response_format
    assert fmt["type"] == "json_schema"
    return fmt["json_schema"]["schema"]


def test_the_suggestion_holds_exactly_the_variables_typed_by_kind(make_llm):
    scale = tg.parameter(2.0, tg.Number(0, 10), name="scale")
    count = tg.parameter(3, tg.Integer(1, 5), name="count")
    style = tg.parameter("short", tg.Choice(("short", "long")), name="style")
    prompt = tg.parameter("Answer:", tg.Text(max_length=50), name="prompt")
    out = tg.apply(lambda a, b, c, d: f"{d} {a * b} {c}", scale, count, style, prompt)
    schema = _step_schema(make_llm, [scale, count, style, prompt], out)
    suggestion = schema["properties"]["suggestion"]
    assert suggestion["additionalProperties"] is False
    assert suggestion["properties"] == {
        "scale": {"type": "number", "minimum": 0.0, "maximum": 10.0},
        "count": {"type": "integer", "minimum": 1, "maximum": 5},
        "style": {"enum": ["short", "long"]},
        "prompt": {"type": "string", "maxLength": 50},
    }
    assert schema["properties"]["reasoning"]["maxLength"] == REASONING_CHARS
    assert schema["required"] == ["reasoning", "suggestion"]


def test_code_is_a_string_and_names_follow_module_paths(make_llm):
    class Agent(tg.Module):
        def __init__(self):
            self.temperature = tg.parameter(0.5, tg.Number(0, 1))

        @tg.bundle(trainable=True)
        def act(self, x):
            """Double x."""
            return x * 2

        def forward(self, x):
            return self.act(x) * self.temperature

    agent = Agent()
    out = agent(tg.node(2.0, name="x"))
    schema = _step_schema(make_llm, agent, out)
    props = schema["properties"]["suggestion"]["properties"]
    assert set(props) == set(dict(agent.named_parameters()))
    assert {"type": "string"} in props.values()


def test_no_schema_text_is_pasted_into_the_prompt_when_the_provider_enforces_it(make_llm):
    x = tg.parameter(1.0, tg.Number(), name="x")
    out = x * 2
    out.backward("bigger")
    llm, transport = make_llm([json.dumps({"reasoning": "r", "suggestion": {"x": 2}})])
    tg.OptoPrime([x], llm=llm).step()
    assert all("JSON schema" not in m["content"] for m in transport.requests[0].messages)


def test_kinds_without_constraints_allow_any_json():
    x = tg.parameter({"a": 1}, tg.Structure(), name="x")
    assert reply_schema({"x": x})["properties"]["suggestion"]["properties"]["x"] == {}


def test_arrays_are_nested_lists_of_their_shape():
    kind = tg.Array(shape=(2, 3), low=0.0)
    assert kind.json_schema() == {
        "type": "array",
        "minItems": 2,
        "maxItems": 2,
        "items": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "number", "minimum": 0.0}},
    }
