"""OptoPrimeMulti: several candidates per step, asked at once at their own
temperatures, one kept by a judge, by majority, by the user's check or function;
proposing changes nothing and the one report covers the whole step."""

from __future__ import annotations

import asyncio
import json

import pytest

import tracegrad as tg
from tracegrad.llm import LLM, ScriptedTransport
from tracegrad.optimizers.llm.multi import OptoPrimeMulti


def suggest(value, reasoning="try it"):
    return json.dumps({"reasoning": reasoning, "answer": None, "suggestion": {"prompt": value}})


def by_temperature(values):
    """A model whose suggestion depends only on the temperature it is asked at."""

    def answer(request):
        if request.messages[0]["content"].startswith("You compare"):
            raise AssertionError("no judge expected")
        return {"text": suggest(values[request.params.get("temperature")]), "cost_usd": 0.001}

    return LLM("scripted/optimizer", transport=ScriptedTransport(answer), cache=False)


@tg.bundle
def respond(prompt, question):
    """Answers the question as the prompt says."""
    return f"{prompt} -> {question}"


@pytest.fixture
def prompt():
    p = tg.node("Answer.", trainable=True, name="prompt")
    respond(p, tg.node("Why?", name="question")).backward("Explain more.")
    return p


def test_each_candidate_is_asked_at_its_own_temperature_and_sample(prompt):
    llm = by_temperature({1.0: "A", 0.5: "B", 0.0: "C"})
    opt = OptoPrimeMulti([prompt], llm=llm, candidates=3, select="majority")
    opt.propose(sample=1)
    requests = sorted(llm.transport.requests, key=lambda r: r.sample_index)
    assert [r.params["temperature"] for r in requests] == [1.0, 0.5, 0.0]
    assert [r.sample_index for r in requests] == [3, 4, 5]


def test_majority_keeps_the_values_most_candidates_suggest(prompt):
    opt = OptoPrimeMulti([prompt], llm=by_temperature({1.0: "A", 0.5: "B", 0.0: "B"}), select="majority")
    report = opt.step()
    assert prompt.data == "B"
    assert report.details["selection"] == "majority" and report.details["selected"] == 1
    assert report.details["votes"] == [1, 2, 2]


def test_a_step_reports_the_kept_candidate_with_the_cost_of_all(prompt):
    opt = OptoPrimeMulti([prompt], llm=by_temperature({1.0: "A", 0.5: "B", 0.0: "C"}), select="majority")
    report = opt.step()
    assert report.status == "updated" and [u.new for u in report.updates] == ["A"]
    assert report.calls == 3 and report.cost_usd == pytest.approx(0.003)
    summaries = report.details["candidates"]
    assert [(c["candidate"], c["temperature"], c["values"]) for c in summaries] == [
        (0, 1.0, {"prompt": "'A'"}),
        (1, 0.5, {"prompt": "'B'"}),
        (2, 0.0, {"prompt": "'C'"}),
    ]
    assert "candidates" in json.dumps(report.to_json())


def test_the_judge_picks_one_of_the_candidates(prompt):
    judged = []

    def judge_answer(request):
        judged.append(request.messages[1]["content"])
        return json.dumps({"reasoning": "B explains more", "best": 2})

    judge = LLM("scripted/judge", transport=ScriptedTransport(judge_answer), cache=False)
    opt = OptoPrimeMulti([prompt], llm=by_temperature({1.0: "A", 0.0: "B"}), candidates=2, judge=judge)
    report = opt.step()
    assert prompt.data == "B" and report.details["selection"] == "judge"
    assert report.details["judge_reasoning"] == "B explains more" and report.calls == 3
    assert "Candidate 1:" in judged[0] and "prompt = 'B'" in judged[0] and "Explain more." in judged[0]


def test_a_judge_that_names_no_candidate_falls_back_to_majority(prompt):
    judge = LLM("scripted/judge", transport=ScriptedTransport(lambda r: '{"best": 7}'), cache=False)
    opt = OptoPrimeMulti([prompt], llm=by_temperature({1.0: "A", 0.0: "B"}), candidates=2, judge=judge)
    report = opt.step()
    assert prompt.data == "A" and report.details["selection"] == "majority"
    assert "candidate number from 1 to 2" in report.details["judge_error"]
    assert report.calls == 4  # two candidates and the judge's two replies


def test_candidates_that_agree_need_no_judge(prompt):
    opt = OptoPrimeMulti([prompt], llm=by_temperature({1.0: "A", 0.5: "A", 0.0: "A"}))
    report = opt.step()
    assert prompt.data == "A" and report.details["selection"] == "agreement" and report.calls == 3


def test_the_users_check_keeps_the_best_scoring_candidate_and_puts_the_values_back(prompt):
    seen = []

    def check():
        seen.append(prompt.data)
        return len(prompt.data)

    opt = OptoPrimeMulti([prompt], llm=by_temperature({1.0: "short", 0.5: "much longer", 0.0: "mid size"}), score=check)
    proposal = opt.propose()
    assert seen == ["short", "much longer", "mid size"]
    assert prompt.data == "Answer." and opt.step_count == 0 and len(opt.memory) == 0
    assert proposal.values == {"prompt": "much longer"} and proposal.report.details["scores"] == [5.0, 11.0, 8.0]
    opt.apply(proposal)
    assert prompt.data == "much longer" and opt.step_count == 1


def test_a_users_function_picks_among_the_usable_candidates(prompt):
    def answer(request):
        temperature = request.params["temperature"]
        return "no json" if temperature == 1.0 else suggest(f"t={temperature}")

    llm = LLM("scripted/optimizer", transport=ScriptedTransport(answer), cache=False)
    shown = []

    def last(candidates):
        shown.append([c.values["prompt"] for c in candidates])
        return len(candidates) - 1

    opt = OptoPrimeMulti([prompt], llm=llm, select=last, max_attempts=1)
    report = opt.step()
    assert shown == [["t=0.5", "t=0.0"]] and prompt.data == "t=0.0"
    assert [c["status"] for c in report.details["candidates"]] == ["no_reply", "updated", "updated"]


def test_diversity_asks_later_candidates_for_another_way(prompt):
    llm = by_temperature({1.0: "A", 0.5: "B", 0.0: "C"})
    OptoPrimeMulti([prompt], llm=llm, select="majority", diversity=True).propose()
    notes = sorted(r.messages[1]["content"].endswith("in another way.") for r in llm.transport.requests)
    assert notes == [False, True, True]


def test_async_propose_asks_every_candidate(prompt):
    llm = by_temperature({1.0: "A", 0.5: "B", 0.0: "B"})
    proposal = asyncio.run(OptoPrimeMulti([prompt], llm=llm, select="majority").apropose())
    assert proposal.values == {"prompt": "B"} and len(llm.transport.requests) == 3


def test_a_step_without_feedback_asks_no_candidate():
    llm = by_temperature({})
    opt = OptoPrimeMulti([tg.node("x", trainable=True, name="prompt")], llm=llm)
    with pytest.warns(UserWarning):
        assert opt.step().status == "no_feedback"
    assert llm.transport.requests == []


def test_a_selection_rule_that_does_not_exist_is_refused():
    p = tg.node("x", trainable=True, name="prompt")
    with pytest.raises(ValueError, match="select must be one of"):
        OptoPrimeMulti([p], llm=by_temperature({}), select="best")
    with pytest.raises(ValueError, match="either select or score"):
        OptoPrimeMulti([p], llm=by_temperature({}), select="majority", score=lambda: 1.0)
    with pytest.raises(ValueError, match="one temperature per candidate"):
        OptoPrimeMulti([p], llm=by_temperature({}), candidates=2, temperatures=[0.1])
    with pytest.raises(TypeError, match=r"'candidate' \(did you mean 'candidates'\?\)"):
        OptoPrimeMulti([p], llm=by_temperature({}), candidate=2)
