"""The optimizers as a user of the reference library meets them: misspelled options
are refused, a step consumes its feedback, a step that can do nothing says why, and
copies have their own state over the same parameters and the same client."""

from __future__ import annotations

import copy
import json
import warnings

import pytest

import tracegrad as tg
from tracegrad.llm import LLM, Budget, BudgetExceeded, ScriptedTransport, Usage
from tracegrad.optimizers import Hybrid, Optimizer, Proposal


def suggest(value):
    return json.dumps({"reasoning": "try it", "answer": None, "suggestion": {"prompt": value}})


def scripted(*replies, usage=None):
    return LLM("scripted/optimizer", transport=ScriptedTransport(list(replies)), cache=False, usage=usage)


@tg.bundle
def respond(prompt, question):
    """Answers the question as the prompt says."""
    return f"{prompt} -> {question}"


def run(prompt, feedback, opt):
    """One round of the loop, without ``zero_feedback()``."""
    out = respond(prompt, tg.node("Why?", name="question"))
    opt.backward(out, feedback)
    return out


# -- unknown keyword arguments ----------------------------------------------------------------


def test_an_unknown_keyword_of_an_optimizer_is_refused_with_the_closest_name():
    llm = scripted()
    p = tg.node("hi", trainable=True, name="prompt")
    with pytest.raises(TypeError) as err:
        tg.OptoPrime([p], llm=llm, ignore_extraction_error=True, memory_sise=3)
    message = str(err.value)
    assert message.startswith("OptoPrime got unknown keyword arguments 'ignore_extraction_error'")
    assert "'memory_sise' (did you mean 'memory_size'?)" in message
    assert llm.transport.requests == []


def test_sampling_settings_and_extra_of_an_optimizer_reach_its_requests():
    llm = scripted(suggest("better"))
    p = tg.node("hi", trainable=True, name="prompt")
    opt = tg.OPRO([p], llm=llm, temperature=0.7, seed=5, extra={"reasoning_effort": "low"})
    run(p, "be better", opt)
    opt.step()
    params = llm.transport.requests[0].params
    assert params["temperature"] == 0.7 and params["seed"] == 5 and params["reasoning_effort"] == "low"


# -- stale feedback ---------------------------------------------------------------------------


def test_a_committed_step_consumes_the_feedback_it_used():
    llm = scripted(suggest("second"), suggest("third"))
    p = tg.node("first", trainable=True, name="prompt")
    opt = tg.OptoPrime([p], llm=llm)
    run(p, "round one feedback", opt)
    opt.step()
    assert p.feedback == []
    run(p, "round two feedback", opt)  # no zero_feedback() in between
    opt.step()
    second_prompt = llm.transport.requests[1].messages[1]["content"]
    assert "round two feedback" in second_prompt and "round one feedback" not in second_prompt


def test_a_proposal_that_is_not_applied_keeps_the_feedback():
    llm = scripted(suggest("a"), suggest("b"))
    p = tg.node("first", trainable=True, name="prompt")
    opt = tg.OptoPrime([p], llm=llm)
    run(p, "be better", opt)
    opt.propose()  # dropped
    assert [f.value for f in p.feedback] == ["be better"]
    assert opt.step().status == "updated" and p.data == "b"


def test_zero_feedback_still_forgets_the_feedback_by_hand():
    opt = tg.OptoPrime([p := tg.node("x", trainable=True, name="prompt")], llm=scripted())
    run(p, "be better", opt)
    opt.zero_feedback()
    assert p.feedback == [] and opt.propose().status == "no_feedback"


def test_a_composite_step_consumes_the_feedback_of_every_part():
    class Appender(Optimizer):
        def propose(self, *, sample: int = 0) -> Proposal:
            values = {n: f"{p.data}+" for n, p in self.names.items() if p.feedback}
            return self._proposal(values, self._report("updated")) if values else self._idle_proposal()

    a, b = tg.node("a", trainable=True, name="a"), tg.node("b", trainable=True, name="b")
    opt = Hybrid(first=Appender([a]), second=Appender([b]))
    opt.backward(respond(a, b), "longer")
    opt.step()
    assert a.feedback == [] == b.feedback
    with pytest.warns(UserWarning):
        assert opt.step().status == "no_feedback" and (a.data, b.data) == ("a+", "b+")


# -- a step that can do nothing ------------------------------------------------------------------


def test_a_step_without_feedback_says_why_and_warns_once():
    opt = tg.OptoPrime([tg.node("x", trainable=True, name="prompt")], llm=scripted())
    with pytest.warns(UserWarning, match="OptoPrime.step\\(\\) did nothing: no parameter"):
        report = opt.step()
    assert report.status == "no_feedback" and "backward(output, feedback)" in report.reason
    assert "reason: no parameter" in report.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert opt.step().reason == report.reason  # said again in the report, not warned again


def test_feedback_on_an_output_that_depends_on_no_parameter_says_so():
    p = tg.node("x", trainable=True, name="prompt")
    opt = tg.OptoPrime([p], llm=scripted())
    unrelated = tg.node("plain", name="plain") + " text"
    opt.backward(unrelated, "bad")
    with pytest.warns(UserWarning):
        report = opt.step()
    assert report.status == "no_feedback"
    assert f"the feedback given to {unrelated.name} reached none of the parameters" in report.reason


def test_a_step_whose_replies_are_unusable_says_why():
    p = tg.node("x", trainable=True, name="prompt")
    opt = tg.OptoPrime([p], llm=scripted("no json", "still none"), max_attempts=2)
    run(p, "be better", opt)
    report = opt.step()
    assert report.status == "no_reply" and report.reason.startswith("the model gave no usable reply in 2 replies")


def test_a_composite_that_can_do_nothing_says_why():
    class Idle(Optimizer):
        def propose(self, *, sample: int = 0) -> Proposal:
            return self._idle_proposal()

    opt = Hybrid(Idle([tg.node("a", trainable=True, name="a")]))
    with pytest.warns(UserWarning, match="Hybrid.step"):
        report = opt.step()
    assert report.status == "no_feedback" and "no parameter of this Hybrid" in report.reason


# -- copies -------------------------------------------------------------------------------------------


def test_a_copied_optimizer_proposes_and_is_applied_on_its_own():
    llm = scripted(suggest("from the copy"), suggest("from the original"))
    p = tg.node("first", trainable=True, name="prompt")
    opt = tg.OptoPrime([p], llm=llm, memory_size=3)
    twin = copy.deepcopy(opt)
    assert twin.parameters == [p] and twin.parameters[0] is p and twin.llm is llm
    run(p, "be better", opt)
    twin.step()
    assert p.data == "from the copy"
    assert (twin.step_count, len(twin.memory)) == (1, 1)
    assert (opt.step_count, len(opt.memory)) == (0, 0)
    run(p, "be better again", opt)
    opt.step()
    assert p.data == "from the original" and opt.step_count == 1 and twin.step_count == 1


def test_copies_of_an_optimizer_spend_one_budget():
    llm = scripted(suggest("a"), suggest("b"), usage=Usage(Budget(max_calls=1)))
    p = tg.node("first", trainable=True, name="prompt")
    opt = tg.OptoPrime([p], llm=llm)
    twin = copy.copy(opt)
    run(p, "be better", opt)
    opt.propose()
    with pytest.raises(BudgetExceeded):
        twin.propose()


def test_a_copied_composite_owns_copies_of_its_parts():
    inner = tg.OptoPrime([p := tg.node("x", trainable=True, name="prompt")], llm=scripted())
    opt = Hybrid(llm=inner)
    twin = copy.deepcopy(opt)
    assert twin.optimizers["llm"] is not inner and twin.optimizers["llm"].parameters[0] is p
    assert twin.optimizers["llm"].llm is inner.llm
