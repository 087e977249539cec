"""Run events: the dispatcher's contract, JSON-ready events, and what an optimizer emits."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest

import tracegrad as tg
from tracegrad.events import Dispatcher
from tracegrad.llm import LLM, Budget, BudgetExceeded, ScriptedTransport, Usage


def suggest(value, reasoning="shorter is better"):
    return json.dumps({"reasoning": reasoning, "answer": None, "suggestion": {"prompt": value}})


def scripted(*replies, usage=None):
    return LLM("scripted/optimizer", transport=ScriptedTransport(list(replies)), cache=False, usage=usage)


@tg.bundle
def respond(prompt, question):
    """Answers the question as the prompt says."""
    return f"{prompt} -> {question}"


def give_feedback(prompt, opt, feedback="too long"):
    out = respond(prompt, tg.node("Why?", name="question"))
    opt.backward(out, feedback)


# -- the dispatcher --------------------------------------------------------------------------


def test_subscribers_get_every_event_in_the_order_they_subscribed_until_they_unsubscribe():
    events, seen = Dispatcher(), []
    first = events.subscribe(lambda e: seen.append(("first", e.kind)))
    events.subscribe(lambda e: seen.append(("second", e.kind)))
    events.emit(tg.StepStarted(step=1))
    first()
    events.emit(tg.StepEnded(step=1))
    assert seen == [("first", "step_started"), ("second", "step_started"), ("second", "step_ended")]
    assert len(events) == 1 and events


def test_a_raising_subscriber_is_logged_once_and_keeps_receiving_events(caplog):
    events, seen, calls = Dispatcher(), [], []

    def broken(event):
        calls.append(event.kind)
        raise KeyError("no such field")

    events.subscribe(broken)
    events.subscribe(lambda e: seen.append(e.kind))
    with caplog.at_level(logging.WARNING, logger="tracegrad.events"):
        for step in (1, 2, 3):
            events.emit(tg.StepStarted(step=step))
    assert seen == calls == ["step_started"] * 3  # neither the run nor the others noticed
    warnings = [r for r in caplog.records if r.name == "tracegrad.events"]
    assert len(warnings) == 1
    assert "broken" in warnings[0].getMessage() and "step_started" in warnings[0].getMessage()
    assert warnings[0].exc_info[0] is KeyError  # the traceback is in the log


def test_a_strict_subscriber_stops_the_emitter():
    events = Dispatcher()

    def full_disk(event):
        raise OSError("no space left")

    events.subscribe(full_disk, strict=True)
    with pytest.raises(OSError, match="no space"):
        events.emit(tg.RunEnded(reason="done"))


def test_a_subscriber_must_be_callable():
    with pytest.raises(tg.TracegradError, match="callable"):
        Dispatcher().subscribe("print")


def test_copies_share_the_dispatcher_and_pickles_leave_the_subscribers_behind():
    events = Dispatcher()
    events.subscribe(print)
    assert copy.deepcopy(events) is events and copy.copy(events) is events
    assert len(pickle.loads(pickle.dumps(events))) == 0


def test_every_event_is_json_data_with_its_kind_and_a_timestamp():
    kinds = set()
    for event in (
        tg.RunStarted(config={"batch_size": 2}, parameters={"prompt": "hi"}, version="abc", total_steps=3),
        tg.RunEnded(reason="3 steps", best_score=1.0, spend={"calls": 2}),
        tg.StepStarted(step=1, examples=[0, 1]),
        tg.StepEnded(step=1, changes={"prompt": {"old": "a", "new": "b"}}, record={"step": 1}),
        tg.Proposed(step=1, changes={"x": {"old": 1, "new": 2}}, reasoning="why", cost_usd=None),
        tg.Evaluated(step=1, split="validation", sample=0, score=0.5),
        tg.Decided(step=1, accepted=False, reason="batch score 0.2 < 0.5"),
        tg.BudgetExhausted(step=2, message="max_calls"),
        tg.ErrorRaised.of(ValueError("bad"), step=2),
    ):
        data = json.loads(json.dumps(event.to_json()))
        assert data["event"] == event.kind and data["timestamp"] == pytest.approx(event.timestamp)
        assert isinstance(event, tg.Event)
        kinds.add(event.kind)
    assert len(kinds) == 9
    with pytest.raises(AttributeError):
        event.step = 3  # events are frozen


# -- what an optimizer emits -----------------------------------------------------------------


def test_an_optimizer_step_emits_its_proposal_and_the_decision():
    llm = scripted(suggest("Be brief."))
    prompt = tg.node("Answer at length.", trainable=True, name="prompt")
    opt, seen = tg.OptoPrime([prompt], llm=llm), []
    unsubscribe = opt.subscribe(seen.append)
    give_feedback(prompt, opt)
    opt.step()
    proposed, decided = seen
    assert isinstance(proposed, tg.Proposed) and isinstance(decided, tg.Decided)
    assert (proposed.step, proposed.optimizer, proposed.status) == (1, "OptoPrime", "updated")
    assert proposed.changes == {"prompt": {"old": "Answer at length.", "new": "Be brief."}}
    assert proposed.reasoning == "shorter is better" and proposed.calls == 1
    assert (decided.step, decided.accepted) == (1, True)
    unsubscribe()
    give_feedback(prompt, opt)
    with pytest.raises(tg.LLMCallError):  # the script has no more replies
        opt.step()
    assert len(seen) == 2


def test_a_copy_of_an_optimizer_reports_to_the_same_subscribers():
    prompt = tg.node("hi", trainable=True, name="prompt")
    opt, seen = tg.OptoPrime([prompt], llm=scripted()), []
    opt.subscribe(seen.append)
    twin = copy.deepcopy(opt)
    twin.events.emit(tg.StepStarted(step=1))
    assert [e.kind for e in seen] == ["step_started"]


def test_applying_a_value_that_does_not_fit_its_kind_emits_a_rejection():
    share = tg.parameter(0.5, tg.Number(0.0, 1.0), name="share")
    opt, seen = tg.OptoPrime([share], llm=scripted()), []
    opt.subscribe(seen.append)
    proposal = tg.Proposal({"share": 7.0}, tg.StepReport("OptoPrime", 1, "updated"), optimizer=opt)
    with pytest.raises(tg.InvalidValueError):
        opt.apply(proposal)
    [decided] = seen
    assert not decided.accepted and "share" in decided.reason and share.value == 0.5


def test_a_spent_budget_in_a_step_is_an_event_before_the_error():
    llm = scripted(suggest("a"), suggest("b"), usage=Usage(Budget(max_calls=1)))
    prompt = tg.node("hi", trainable=True, name="prompt")
    opt, seen = tg.OptoPrime([prompt], llm=llm), []
    opt.subscribe(seen.append)
    give_feedback(prompt, opt)
    opt.step()
    give_feedback(prompt, opt)
    with pytest.raises(BudgetExceeded):
        opt.step()
    assert [e.kind for e in seen] == ["proposed", "decided", "budget_exhausted"]
    assert seen[-1].step == 2 and "max_calls" in seen[-1].message


def test_an_error_in_a_step_is_an_event_before_it_is_raised():
    prompt = tg.node("hi", trainable=True, name="prompt")
    opt, seen = tg.OptoPrime([prompt], llm=scripted()), []  # no reply scripted: the call fails
    opt.subscribe(seen.append)
    give_feedback(prompt, opt)
    with pytest.raises(tg.LLMCallError, match="ran out of responses"):
        opt.step()
    [error] = seen
    assert isinstance(error, tg.ErrorRaised) and (error.error, error.step) == ("LLMCallError", 1)
    assert "ran out of responses" in error.message


def test_an_optimizer_without_subscribers_builds_no_events(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an event was built")

    monkeypatch.setattr(tg.Proposed, "of", classmethod(refuse))
    llm = scripted(suggest("Be brief."))
    prompt = tg.node("Answer at length.", trainable=True, name="prompt")
    opt = tg.OptoPrime([prompt], llm=llm)
    give_feedback(prompt, opt)
    opt.step()
    assert prompt.value == "Be brief."
