"""``call_llm``: a model call inside a traced pipeline is one operation on its prompts,
made through the one client (cache, cost, budget, structured output), and the prompts
of an LLM pipeline are optimized without glue code."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

import tracegrad as tg
from tracegrad.llm import LLM, Budget, BudgetExceeded, ScriptedTransport, Usage, acall_llm, call_llm


def task_model(answer=lambda request: "ok", **kw):
    kw.setdefault("cache", False)
    return LLM("scripted/task", transport=ScriptedTransport(answer), **kw)


def test_a_model_call_is_one_operation_whose_inputs_are_its_prompts():
    llm = task_model(lambda r: f"reply to {r.messages[-1]['content']}")
    system = tg.node("Be brief.", trainable=True, name="system")
    question = tg.node("Why?", name="question")
    out = call_llm(system, question, "and how?", llm=llm, temperature=0)
    assert out.data == "reply to and how?"
    assert out.parents == (system, question)
    assert out.operator.name == "call_llm"
    sent = llm.transport.requests[0]
    assert sent.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
        {"role": "user", "content": "and how?"},
    ]
    assert sent.params == {"temperature": 0}
    out.backward("too long")
    assert [f.value for f in system.feedback] == ["too long"]


def test_a_model_call_shows_as_a_call_on_its_prompt_variables():
    llm = task_model()
    system = tg.node("Be brief.", trainable=True, name="system")
    out = call_llm(system, tg.node("Why?", name="question"), llm=llm, model="scripted/other", seed=1)
    graph = tg.trace.subgraph([system], [out])
    assert graph.code_line(out) == f"{graph.names[out]} = call_llm(system, question, model='scripted/other')"
    assert llm.transport.requests[0].model == "scripted/other"


def test_a_model_call_goes_through_the_clients_cache_and_ledger():
    llm = task_model(temperature=0, cache=True)
    first = call_llm("sys", "hello", llm=llm)
    second = call_llm("sys", "hello", llm=llm)
    assert first.data == second.data == "ok"
    assert llm.usage.calls == 1 and llm.usage.cache_hits == 1


def test_a_model_call_with_a_schema_holds_the_parsed_object():
    class Verdict(BaseModel):
        label: str
        confidence: float

    llm = task_model(lambda r: json.dumps({"label": "spam", "confidence": 0.9}))
    out = call_llm("Classify.", tg.node("Buy now!"), llm=llm, schema=Verdict)
    assert isinstance(out.data, Verdict) and out.data.label == "spam"


def test_a_failed_model_call_is_an_error_node_to_give_feedback_to():
    class Verdict(BaseModel):
        label: str

    system = tg.node("Classify.", trainable=True, name="system")
    llm = task_model(lambda r: "not json at all")
    with pytest.raises(tg.ExecutionError) as err:
        call_llm(system, "Buy now!", llm=llm, schema=Verdict)
    err.value.node.backward("answer in JSON")
    assert [f.value for f in system.feedback] == ["answer in JSON"]


def test_a_spent_budget_stops_a_pipeline_rather_than_becoming_data():
    llm = task_model(usage=Usage(Budget(max_calls=1)))
    call_llm("sys", "one", llm=llm)
    with pytest.raises(BudgetExceeded):
        call_llm("sys", "two", llm=llm)


def test_an_unknown_setting_of_a_model_call_is_refused():
    with pytest.raises(TypeError, match=r"'temperture' \(did you mean 'temperature'\?\)"):
        call_llm("sys", "hi", llm=task_model(), temperture=0)


def test_a_model_call_inside_a_bundle_returns_the_plain_reply():
    llm = task_model(lambda r: '{"n": 3}')
    system = tg.node("Count.", trainable=True, name="system")

    @tg.bundle
    def count(prompt, text):
        """Counts with the model."""
        return json.loads(call_llm(prompt, text, llm=llm))["n"]

    out = count(system, tg.node("a b c"))
    assert out.data == 3 and system in out.parents


def test_an_async_model_call_is_recorded_like_a_sync_one():
    llm = task_model(lambda r: "async ok")
    system = tg.node("Be brief.", trainable=True, name="system")
    out = asyncio.run(acall_llm(system, "hi", llm=llm))
    assert out.data == "async ok" and out.parents == (system,)


def test_optoprime_improves_the_system_prompt_of_a_two_call_pipeline():
    """A scripted task model answers well only with the right system prompt; a scripted
    optimizer model reads the program (both call_llm lines) and rewrites that prompt."""

    def task(request):
        system = request.messages[0]["content"]
        if system.startswith("Summarize"):
            return f"summary of: {request.messages[-1]['content']}"
        return "PARIS" if system == "Answer in one word." else "The capital of France is Paris, a large city."

    seen = []

    def optimizer(request):
        seen.append(request.messages[1]["content"])
        suggestion = {"system": "Answer in one word."}
        return json.dumps({"reasoning": "ask for one word", "answer": None, "suggestion": suggestion})

    llm = task_model(task)
    system = tg.node("Answer the question.", trainable=True, name="system")
    question = tg.node("What is the capital of France?", name="question")

    def pipeline():
        answer = call_llm(system, question, llm=llm, name="answerer")
        return call_llm("Summarize the answer.", answer, llm=llm)

    opt = tg.OptoPrime([system], llm=LLM("scripted/optimizer", transport=ScriptedTransport(optimizer), cache=False))
    out = pipeline()
    opt.backward(out, "The answer must be one word.")
    report = opt.step()
    assert report.status == "updated" and system.data == "Answer in one word."
    prompt = seen[0]
    assert "answerer1 = answerer(system, question)" in prompt
    assert "call_llm1 = call_llm('Summarize the answer.', answerer1)" in prompt
    assert "system='Answer the question.'" in prompt and "question='What is the capital of France?'" in prompt
    assert pipeline().data == "summary of: PARIS"
