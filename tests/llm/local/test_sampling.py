"""The grammar stage on the real model: same greedy replies as llama-cpp-python's
whole-vocabulary grammar, and constraints the model would not follow on its own still
hold (the whole-vocabulary fallback)."""

from __future__ import annotations

import json
import os

import pytest

from tracegrad.llm.local import available, llama_available

if not (llama_available() and available()) and not os.environ.get("TRACEGRAD_REQUIRE_LOCAL_MODEL"):
    pytest.skip("the embedded model is not installed (make local)", allow_module_level=True)

pytestmark = [pytest.mark.local_model, pytest.mark.slow]

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "legs": {"type": "integer"}},
    "required": ["name", "legs"],
}


@pytest.fixture(scope="module")
def model():
    from tracegrad.llm.local.transport import DEFAULT_CONTEXT, _load, model_file

    return _load(model_file("local"), DEFAULT_CONTEXT)[0]


def _reply(llama, prompt: str, schema: dict, **kw) -> str:
    out = llama.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        response_format={"type": "json_object", "schema": schema},
        max_tokens=40,
        **{"temperature": 0.0, "seed": 0, **kw},
    )
    return out["choices"][0]["message"]["content"]


def test_greedy_replies_match_the_whole_vocabulary_grammar(model):
    import llama_cpp

    prompt = "Name an animal and its number of legs, as JSON."
    ours = _reply(model, prompt, SCHEMA)
    # the library's own sampler chain on the same loaded model
    plain = llama_cpp.Llama._init_sampler.__get__(model)
    model._init_sampler = plain
    try:
        theirs = _reply(model, prompt, SCHEMA)
    finally:
        del model._init_sampler
    assert ours == theirs
    assert set(json.loads(ours)) == {"name", "legs"}


def test_a_constraint_the_model_would_not_choose_still_holds(model):
    schema = {"type": "object", "properties": {"colour": {"enum": ["zqx", "vvb"]}}, "required": ["colour"]}
    for temperature in (0.0, 0.8):
        reply = json.loads(_reply(model, "What colour is the sky? Reply as JSON.", schema, temperature=temperature))
        assert reply["colour"] in {"zqx", "vvb"}
