"""The optimizer protocol for LLM optimizers: propose changes nothing, apply does it all,
one client call per step, state loads all or nothing, no litellm for a scripted model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import tracegrad as tg
from tracegrad.errors import TracegradError
from tracegrad.llm import LLM
from tracegrad.optimizers.llm.opro import OPRO
from tracegrad.optimizers.llm.optoprime import OptoPrime
from tracegrad.optimizers.llm.problem import build_problem
from tracegrad.trace import subgraph


def reply(suggestion=None, reasoning="because"):
    return json.dumps({"reasoning": reasoning, "answer": None, "suggestion": suggestion or {}})


@pytest.fixture
def graph():
    scale = tg.parameter(2.0, tg.Number(0, 10), name="scale")
    bias = tg.parameter(1, tg.Integer(-5, 5), name="bias")
    out = scale * tg.node(3.0, name="x") + bias
    out.backward("The output should be 10.")
    return scale, bias


def test_propose_changes_nothing_and_apply_does_it_all(make_llm, graph):
    scale, bias = graph
    llm, transport = make_llm([reply({"scale": 3.0})])
    opt = OptoPrime([scale, bias], llm=llm, memory_size=2)
    proposal = opt.propose()
    assert proposal.values == {"scale": 3.0} and proposal.status == "updated"
    assert (scale.value, opt.step_count, opt.history()) == (2.0, 0, [])
    report = opt.apply(proposal)
    assert scale.value == 3.0 and opt.step_count == 1 and len(opt.history()) == 1
    assert report is proposal.report and report.updates[0].changed
    assert report.messages == transport.requests[-1].messages and report.reply == reply({"scale": 3.0})


def test_a_proposal_never_applied_leaves_the_optimizer_as_it_was(make_llm, graph):
    scale, bias = graph
    llm, _ = make_llm([reply({"scale": 4.0}), reply({"scale": 5.0})])
    opt = OptoPrime([scale, bias], llm=llm, memory_size=2)
    before = json.dumps(opt.state_dict(), sort_keys=True)
    opt.propose()
    assert json.dumps(opt.state_dict(), sort_keys=True) == before and scale.value == 2.0
    assert opt.step().status == "updated" and scale.value == 5.0


def test_one_client_call_per_step_with_the_repairs_and_the_check(make_llm, graph):
    scale, bias = graph
    llm, transport = make_llm([reply({"scale": 50.0}), "not json", reply({"scale": 4.0})])
    calls = []

    class Spy(LLM):
        def complete(self, messages, **kw):
            calls.append(kw)
            return super().complete(messages, **kw)

    spy = Spy(llm.model, transport=transport, retry=llm.retry)
    report = OptoPrime([scale, bias], llm=spy, max_attempts=3).step()
    assert len(calls) == 1 and calls[0]["repairs"] == 2 and callable(calls[0]["check"])
    assert len(transport.requests) == 3 and report.attempts == 3 and scale.value == 4.0
    assert [r.name for r in report.rejections] == ["scale"] and "10" in report.rejections[0].reason


def test_the_report_counts_the_calls_of_every_turn(make_llm, graph):
    scale, bias = graph
    turn = {"prompt_tokens": 100, "completion_tokens": 10, "cost_usd": 0.01}
    llm, transport = make_llm([{"text": "nothing useful", **turn}, {"text": reply({"bias": 2}), **turn}])
    report = OptoPrime([scale, bias], llm=llm).step()
    assert (report.calls, report.prompt_tokens, report.completion_tokens) == (2, 200, 20)
    assert report.cost_usd == pytest.approx(0.02) and report.status == "updated"
    assert report.messages == transport.requests[1].messages  # the exact messages of the last call
    assert report.messages[-2]["content"] == "nothing useful"


def test_a_failed_step_is_a_status_with_the_last_exchange(make_llm, graph):
    scale, bias = graph
    llm, transport = make_llm(["no", "still no"])
    report = OptoPrime([scale, bias], llm=llm, max_attempts=2).step()
    assert report.status == "no_reply" and report.reply == "still no" and report.calls == 2
    assert report.messages == transport.requests[-1].messages


def test_no_feedback_proposes_nothing(make_llm):
    p = tg.parameter(1.0, name="p")
    llm, transport = make_llm([])
    proposal = OptoPrime([p], llm=llm).propose()
    assert proposal.values == {} and proposal.status == "no_feedback" and transport.requests == []


async def test_apropose_changes_nothing_either(make_llm, graph):
    scale, bias = graph
    llm, _ = make_llm([reply({"scale": 1.0})])
    opt = OPRO([scale, bias], llm=llm)
    proposal = await opt.apropose()
    assert proposal.values == {"scale": 1.0} and scale.value == 2.0 and opt.history() == []
    opt.apply(proposal)
    assert scale.value == 1.0 and len(opt.history()) == 1


def test_values_use_the_optimizer_names_whatever_the_prompt_shows(make_llm):
    a = tg.parameter(1.0, tg.Number(0, 5), name="w")
    b = tg.parameter(2.0, tg.Number(0, 5), name="w")  # renamed w_2 by the optimizer
    (a * b).backward("bigger")
    llm, _ = make_llm([reply({"w_2": 3.0})])
    opt = OptoPrime([a, b], llm=llm)
    assert sorted(opt.names) == ["w", "w_2"]
    proposal = opt.propose()
    assert proposal.values == {"w_2": 3.0}
    opt.apply(proposal)
    assert (a.value, b.value) == (1.0, 3.0)


def test_the_prompt_names_nodes_as_the_subgraph_does(graph):
    scale, bias = graph
    problem = build_problem([scale, bias], "improve")
    names = subgraph([scale, bias]).names
    assert {e.name for e in problem.code} <= set(names.values())
    assert set(problem.parameters) == {names[scale], names[bias]}


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "OptoPrime", "step_count": 4, "objective": 3, "memory": []},
        {"type": "OptoPrime", "step_count": 4, "memory": [{"values": {"a": 1}}]},
        {"type": "OptoPrime", "step_count": 4, "memory": [{"values": [1], "feedback": "f"}]},
        {"type": "OptoPrime", "step_count": 4, "memory": "nope"},
        {"type": "OptoPrime", "step_count": -1, "memory": []},
        {"type": "OPRO", "step_count": 4, "memory": []},
    ],
)
def test_a_bad_state_loads_nothing(make_llm, graph, bad):
    llm, _ = make_llm([reply({"scale": 3.0})])
    opt = OptoPrime(list(graph), llm=llm, memory_size=3, objective="mine")
    opt.step()
    before = json.dumps(opt.state_dict(), sort_keys=True)
    with pytest.raises(TracegradError):
        opt.load_state_dict(bad)
    assert json.dumps(opt.state_dict(), sort_keys=True) == before


def test_the_model_token_counter_counts_with_the_transport(make_llm, graph):
    llm, transport = make_llm([])
    counted = []

    def count_tokens(model, content):
        counted.append(content)
        return 5, False

    transport.count_tokens = count_tokens
    opt = OptoPrime(list(graph), llm=llm, token_counter="model")
    assert opt.count_tokens("hello world") == 5 and "hello world" in counted


def test_a_scripted_step_and_its_cost_estimate_never_import_litellm():
    code = textwrap.dedent(
        """
        import json, sys
        import tracegrad as tg
        from tracegrad.llm import LLM, ScriptedTransport
        from tracegrad.optimizers.llm.optoprime import OptoPrime
        p = tg.parameter(1.0, tg.Number(0, 5), name="p")
        (p * 2).backward("make it bigger")
        answer = json.dumps({"reasoning": "r", "suggestion": {"p": 2.0}})
        opt = OptoPrime([p], llm=LLM("gpt-4o-mini", transport=ScriptedTransport([answer]), cache=False))
        print(opt.estimate_cost(steps=3))
        assert opt.step().status == "updated" and p.value == 2.0
        sys.exit("litellm" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_each_sample_is_its_own_draw_even_from_the_cache(make_llm, graph):
    scale, bias = graph
    llm, transport = make_llm(
        [reply({"scale": 3.0}), reply({"scale": 4.0}), reply({"scale": 5.0})], temperature=0, cache=True
    )
    opt = OptoPrime([scale, bias], llm=llm)
    first, again, other = opt.propose(), opt.propose(), opt.propose(sample=1)
    assert first.values == again.values == {"scale": 3.0} and other.values == {"scale": 4.0}
    assert len(transport.requests) == 2 and transport.requests[1].sample_index == 1


def test_a_step_that_repeats_the_last_prompt_is_a_new_draw(make_llm):
    scale = tg.parameter(2.0, tg.Number(0, 10), name="scale")
    bias = tg.parameter(1, tg.Integer(-5, 5), name="bias")
    same = reply({"scale": 2.0})  # the current value: the step changes nothing
    llm, transport = make_llm([same, same, reply({"scale": 4.0})], temperature=0.7, seed=5, cache=True)
    opt = OptoPrime([scale, bias], llm=llm)

    def step():
        opt.zero_feedback()
        (scale * tg.node(3.0, name="x") + bias).backward("The output should be 10.")
        return opt.step().status

    statuses = [step() for _ in range(3)]
    assert statuses == ["unchanged", "unchanged", "updated"] and scale.value == 4.0
    # each repeat of the one prompt is its own draw (no cache hit), reproducibly seeded
    assert [r.sample_index for r in transport.requests] == [None, 1, 2]
    assert [r.params["seed"] for r in transport.requests] == [5, 6, 7]
    # the count survives a checkpoint, and a prompt that changed starts again at the first draw
    restored = OptoPrime([scale, bias], llm=llm)
    restored.load_state_dict(opt.state_dict())
    assert restored.state_dict()["repeat"] == opt.state_dict()["repeat"]
    with pytest.raises(TracegradError, match="repeat"):
        restored.load_state_dict({**opt.state_dict(), "repeat": ["x", -1]})
