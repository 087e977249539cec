"""Rendering the trace as a problem: golden layout, names, errors, truncation, budget."""

from __future__ import annotations

import pytest

import tracegrad as tg
from tracegrad.llm.tokens import estimate_tokens
from tracegrad.optimizers.llm.problem import build_problem
from tracegrad.optimizers.llm.render import render_problem


@tg.bundle
def shout(text, times):
    """Repeat the text in capitals."""
    return (text.upper() + " ") * times


@tg.bundle(trainable=True)
def score(text):
    """Count the exclamation marks."""
    return text.count("!")


def _problem(params, instruction="Improve it."):
    return build_problem(params, instruction)


def test_golden_layout():
    greeting = tg.parameter("hi!", name="greeting", description="what we say")
    times = tg.parameter(2, tg.Integer(1, 5), name="times")
    word = tg.node(" there", name="word")
    text = greeting + word
    out = score(shout(text, times))
    out.backward("Too few exclamation marks.")

    rendered = render_problem(_problem([greeting, times, score.parameter]))

    assert rendered == (
        "#Instruction\n"
        "Improve it.\n"
        "\n"
        "#Functions\n"
        "shout(text, times): Repeat the text in capitals.\n"
        "\n"
        "#Code\n"
        "add1 = greeting + word ->'hi! there'\n"
        "shout1 = shout(add1, times) ->'HI! THERE HI! THERE '\n"
        "score1 = score(shout1)  # runs score_code\n"
        "\n"
        "#Variables\n"
        "greeting='hi!'  # what we say\n"
        "times=2  # integer in [1, 5]\n"
        f"score_code =  # {score.parameter.kind.describe()}; its docstring, kept as it is: Count the "
        "exclamation marks; the code of the function score\n"
        "```\n"
        "def score(text):\n"
        '    return text.count("!")\n'
        "```\n"
        "\n"
        "#Inputs\n"
        "word=' there'\n"
        "\n"
        "#Outputs\n"
        "score1=2\n"
        "\n"
        "#Feedback\n"
        "Too few exclamation marks."
    )


def test_code_variable_shows_its_source_once_and_not_as_documentation():
    out = score(tg.node("a!", name="s"))
    out.backward("more")
    problem = _problem([score.parameter])
    assert [e.name for e in problem.variables] == ["score_code"]
    assert problem.functions == []  # the docstring is in the variable's note
    rendered = render_problem(problem)
    assert rendered.count("Count the exclamation marks") == 1


def test_variables_keep_their_own_names_even_when_another_node_has_it():
    p = tg.parameter(1.0, name="x")
    other = tg.node(2.0, name="x")
    out = p * other
    out.backward("smaller")
    problem = _problem([p])
    assert list(problem.parameters) == ["x"]
    assert [e.name for e in problem.inputs] != ["x"]
    assert "x=1.0" in render_problem(problem)


def test_unnamed_nodes_get_short_local_names_stable_across_runs():
    p = tg.parameter(3, name="n")

    def run():
        out = (p + 1) * 2
        out.backward("bigger")
        return render_problem(_problem([p]))

    first = run()
    p.zero_feedback()
    second = run()
    assert first == second
    assert "add1 = n + 1 ->4" in first and "mul1 = add1 * 2" in first


def test_error_output_shows_exception_and_user_frames_only():
    @tg.bundle
    def divide(a, b):
        """Divide."""
        return a / b

    p = tg.parameter(0.0, name="den")
    with pytest.raises(tg.ExecutionError) as info:
        divide(tg.node(1.0, name="num"), p)
    info.value.node.backward("fix the division by zero")
    rendered = render_problem(_problem([p]))
    assert "ZeroDivisionError: float division by zero" in rendered
    assert "return a / b" in rendered
    assert "tracegrad/nodes" not in rendered and "tracegrad/trace" not in rendered
    assert "^^^" not in rendered


def test_feedback_on_several_outputs_is_labelled():
    p = tg.parameter(1.0, name="w")
    a, b = p * 2, p * 3
    a.backward("a too small")
    b.backward("b too big")
    feedback = render_problem(_problem([p])).split("#Feedback\n")[1]
    assert feedback == "mul1: a too small\nmul2: b too big"


def test_long_intermediate_is_truncated_with_marker_but_variables_and_feedback_are_kept():
    p = tg.parameter("seed", name="prompt")
    long_mid = p + "x" * 10_000
    out = long_mid.upper().len()
    out.backward("F" * 3000)
    rendered = render_problem(_problem([p]), value_tokens=100)
    assert "…[truncated " in rendered
    assert "prompt='seed'" in rendered
    assert "F" * 3000 in rendered  # feedback is never capped by value_tokens


@pytest.mark.parametrize("budget", [200, 500, 1500])
def test_whole_prompt_respects_the_budget_cutting_intermediates_first(budget):
    p = tg.parameter("p" * 50, name="prompt")
    h = p
    for i in range(30):
        h = h + f" step {i} " + "z" * 400
    h.backward("needs work")
    rendered = render_problem(_problem([p]), budget_tokens=budget)
    assert estimate_tokens(rendered) <= budget
    assert "needs work" in rendered
    if budget >= 500:
        assert "prompt='" + "p" * 50 + "'" in rendered


def test_budget_holds_with_a_custom_token_counter():
    def words(text):
        return len(text.split()) * 2

    p = tg.parameter("start", name="prompt")
    h = p
    for _ in range(20):
        h = h + " lorem ipsum dolor sit amet" * 20
    h.backward("shorter please")
    rendered = render_problem(_problem([p]), budget_tokens=300, counter=words)
    assert words(rendered) <= 300


def test_tiny_budget_still_returns_text_within_it():
    p = tg.parameter("x" * 1000, name="prompt")
    out = p.upper()
    out.backward("y" * 5000)
    rendered = render_problem(_problem([p]), budget_tokens=10)
    assert estimate_tokens(rendered) <= 10


def test_history_section_comes_before_feedback():
    p = tg.parameter(1, name="k")
    (p + 1).backward("now")
    rendered = render_problem(_problem([p]), history=["k=0\nfeedback: before"])
    assert rendered.index("#History") < rendered.index("#Feedback")
    assert "k=0\nfeedback: before" in rendered


def test_arrays_are_shown_as_lists_a_model_can_answer_in():
    import numpy as np

    from tracegrad._text import literal

    assert literal(np.array([[1.5, 2.0], [3.0, 4.0]], dtype=np.float32)) == "[[1.5, 2.0], [3.0, 4.0]]"
    assert literal(np.float64(0.25)) == "0.25"
