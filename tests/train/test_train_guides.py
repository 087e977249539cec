"""Guides: ready-made metrics, vector scores, and workflow exceptions turned into feedback."""

from __future__ import annotations

import json

import pytest
from train_helpers import Suffixer

import tracegrad as tg
from tracegrad.train import ExactMatch, Example, LLMJudge, Predicate, as_guide, evaluate
from tracegrad.train.guides import mean_objective


def test_exact_match_with_normalisation_and_several_labels():
    plain = ExactMatch()
    assert plain(Example("q", "Paris"), " Paris\n") == (1.0, "Correct.")
    score, feedback = plain(Example("q", "Paris"), "paris")
    assert score == 0.0 and "expected 'Paris'" in feedback and "'paris'" in feedback
    loose = ExactMatch(ignore_case=True, ignore_punctuation=True, collapse_whitespace=True)
    assert loose(Example("q", "New  York"), "new york!")[0] == 1.0
    assert ExactMatch(normalize=lambda s: s.lstrip("0"))(Example("q", "7"), "007")[0] == 1.0
    twelve = Example("how many?", ["twelve", "12"])
    assert plain(twelve, "12")[0] == 1.0 and plain(twelve, "twelve")[0] == 1.0
    assert "'twelve' or '12'" in plain(twelve, "11")[1]


def test_predicate_takes_the_output_or_the_example_and_output():
    upper = Predicate(str.isupper, "Answer in capitals.")
    assert upper(Example("x"), "YES") == (1.0, "Correct.")
    assert upper(Example("x"), "yes") == (0.0, "Answer in capitals.")
    longer = Predicate(lambda ex, out: len(out) > len(ex.input), lambda ex, out: f"{out!r} is too short")
    assert longer(Example("abc"), "abcd")[0] == 1.0
    assert longer(Example("abc"), "ab") == (0.0, "'ab' is too short")


def test_vector_scores_and_the_objective_rule():
    assert mean_objective({"a": 1.0, "b": 0.0}) == 0.5
    assert mean_objective(0.25) == 0.25

    def both(example, output):
        return {"correct": float(output == example.label), "short": float(len(output) <= 3)}, "ok"

    model = Suffixer("!")
    data = [("ab", "ab!"), ("abcd", "x")]
    ev = evaluate(model, data, both, progress=False)
    assert ev.per_example == [1.0, 0.0]  # the mean of each example's objectives
    assert ev.scores == {"correct": 0.5, "short": 0.5}
    weighted = as_guide(both, objective=lambda s: s["correct"])
    ev = evaluate(model, data, weighted, progress=False)
    assert ev.per_example == [1.0, 0.0] and ev.score == 0.5
    assert evaluate(model, [("ab", "ab!")], as_guide(both, success_score=0.9), progress=False).all_succeeded


@tg.bundle
def parse_number(text):
    """Parse the text as an integer."""
    return int(text)


class Parser(tg.Module):
    def forward(self, text):
        return parse_number(text)


class Plain(tg.Module):
    def forward(self, text):
        raise KeyError(text)


def test_an_exception_in_the_workflow_becomes_score_and_feedback_with_its_error_node():
    ev = evaluate(Parser(), [("12", 12), ("twelve", 12), ("3", 4)], ExactMatch(failure_score=-1.0), progress=False)
    ok, failed, wrong = ev.results
    assert ok.score == 1.0 and failed.score == -1.0 and wrong.score == 0.0
    assert failed.error.startswith("ValueError: invalid literal for int()")
    assert "The workflow raised an error: ValueError" in failed.feedback
    assert isinstance(failed.node, tg.ErrorNode) and isinstance(failed.exception, ValueError)
    assert ev.errors == [failed] and not failed.succeeded
    # the error node can be given feedback like any output
    failed.node.backward(failed.feedback)
    assert failed.node.feedback[0].value == failed.feedback


def test_an_exception_outside_traced_functions_is_feedback_too():
    ev = evaluate(Plain(), ["a", "b"], ExactMatch(), progress=False)
    assert [r.error for r in ev.results] == ["KeyError: 'a'", "KeyError: 'b'"]
    assert all(r.node is None for r in ev.results) and ev.score == 0.0


def test_an_exception_in_the_guide_is_raised():
    def broken(example, output):
        raise RuntimeError("bad metric")

    with pytest.raises(RuntimeError, match="bad metric"):
        evaluate(Suffixer(), ["a", "b"], broken, progress=False)


def test_a_spent_budget_stops_the_evaluation():
    llm = tg.LLM(
        "scripted/task", transport=tg.ScriptedTransport(lambda r: "ok"), cache=False, budget=tg.Budget(max_calls=1)
    )

    @tg.bundle
    def ask(text):
        """Ask the model."""
        return llm.complete(text).text

    with pytest.raises(tg.BudgetExceeded):
        evaluate(ask, ["a", "b", "c"], ExactMatch(), concurrency=1, progress=False)


def test_llm_judge_grades_through_the_client_with_a_schema():
    def grade(request):
        content = request.messages[1]["content"]
        good = "#Output\nab!" in content
        assert "#Rubric\nEnds with an exclamation mark." in content and "#Reference" in content
        return json.dumps({"reasoning": "looked", "score": 1.0 if good else 0.2, "feedback": "" if good else "add !"})

    judge_llm = tg.LLM("scripted/judge", transport=tg.ScriptedTransport(grade), cache=False)
    judge = LLMJudge(judge_llm, "Ends with an exclamation mark.")
    ev = evaluate(Suffixer("!"), [("ab", "ab!")], judge, progress=False)
    assert ev.score == 1.0 and ev.results[0].succeeded
    ev = evaluate(Suffixer("?"), [("ab", "ab!")], judge, progress=False)
    assert ev.score == pytest.approx(0.2) and ev.results[0].feedback == "add !"
    assert ev.calls == 1  # the judge's ledger is counted


def test_llm_judge_with_criteria_gives_a_vector_score():
    def grade(request):
        return json.dumps({"reasoning": "r", "scores": {"correct": 1.0, "polite": 0.5}, "feedback": "be nicer"})

    llm = tg.LLM("scripted/judge", transport=tg.ScriptedTransport(grade), cache=False)
    judge = LLMJudge(llm, "Grade it.", criteria={"correct": "is right", "polite": "is polite"})
    ev = evaluate(Suffixer("!"), ["ab"], judge, progress=False)
    assert ev.results[0].scores == {"correct": 1.0, "polite": 0.5}
    assert ev.score == 0.75 and ev.scores == {"correct": 1.0, "polite": 0.5}
