"""The problem of a trace with ``trace_inside`` calls: their inner steps under their line."""

from __future__ import annotations

import json

import tracegrad as tg
from tracegrad.llm.tokens import estimate_tokens
from tracegrad.optimizers.llm.optoprime import OptoPrime
from tracegrad.optimizers.llm.problem import build_problem
from tracegrad.optimizers.llm.render import render_problem
from tracegrad.trace import topological, unique_names


@tg.bundle
def clip(v, hi):
    """Clip v to hi."""
    return min(v, hi)


def layer_graph():
    w = tg.parameter(2.0, name="w")
    b = tg.parameter(1.0, name="b")

    @tg.bundle(trace_inside=True)
    def layer(x, scale):
        """A small layer."""
        h = x * w + b
        return clip(h * scale, 100.0)

    out = layer(tg.node(3.0, name="x"), 2)
    out.backward("too small")
    return w, b, out


def test_prompt_shows_the_inner_steps_from_a_parameter_read_inside():
    w, b, _ = layer_graph()
    assert render_problem(build_problem([w, b], "Improve it.")) == (
        "#Instruction\n"
        "Improve it.\n"
        "\n"
        "#Functions\n"
        "layer(x, scale): A small layer.\n"
        "clip(v, hi): Clip v to hi.\n"
        "\n"
        "#Code\n"
        "layer1 = layer(x, 2)  # reads w, b\n"
        "    mul1 = x * w ->6.0\n"
        "    add1 = mul1 + b ->7.0\n"
        "    mul2 = add1 * 2 ->14.0\n"
        "    clip1 = clip(mul2, 100.0) ->14.0\n"
        "\n"
        "#Variables\n"
        "w=2.0\n"
        "b=1.0\n"
        "\n"
        "#Inputs\n"
        "x=3.0\n"
        "\n"
        "#Outputs\n"
        "layer1=14.0\n"
        "\n"
        "#Feedback\n"
        "too small"
    )


def test_optoprime_prompt_shows_the_inner_lines(make_llm):
    w, b, _ = layer_graph()
    no_change = json.dumps({"reasoning": "fine", "answer": None, "suggestion": {}})
    llm, transport = make_llm([no_change])
    OptoPrime([w, b], llm=llm).step()
    user = transport.requests[0].messages[-1]["content"]
    assert "layer1 = layer(x, 2)  # reads w, b\n    mul1 = x * w ->6.0\n" in user


def test_inner_names_are_unique_and_keep_the_outer_names():
    w = tg.parameter(2.0, name="w")

    @tg.bundle(trace_inside=True)
    def step(x):
        return x * w + 1

    x = tg.node(1.0, name="x")
    out = step(x * 3) * 5  # outer mul1, mul2 around the call
    out.backward("fb")
    outer_names = unique_names(topological([out]))
    assert sorted(outer_names.values()) == ["mul1", "mul2", "step1", "w", "x"]
    problem = build_problem([w], "")
    assert [(e.value, e.depth) for e in problem.code] == [
        ("step1 = step(mul1)", 0),
        ("mul3 = mul1 * w", 1),  # numbered after the outer mul1 and mul2
        ("add1 = mul3 + 1", 1),
        ("mul2 = step1 * 5", 0),
    ]
    assert [e.name for e in problem.inputs] == ["mul1"]


def test_inner_steps_that_do_not_depend_on_a_variable_are_left_out():
    w = tg.parameter(2.0, name="w")

    @tg.bundle(trace_inside=True)
    def mix(x, y):
        return (x + 1) * (y * w)

    out = mix(tg.node(1.0, name="x"), tg.node(4.0, name="y"))
    out.backward("fb")
    problem = build_problem([w], "")
    assert [(e.value, e.depth) for e in problem.code] == [
        ("mix1 = mix(x, y)", 0),
        ("mul1 = y * w", 1),
        ("mul2 = add1 * mul1", 1),
    ]
    assert [e.name for e in problem.inputs] == ["x", "y", "add1"]  # computed inside, from no variable


def test_call_that_does_not_depend_on_a_variable_is_not_expanded():
    w = tg.parameter(2.0, name="w")

    @tg.bundle(trace_inside=True)
    def inc(x):
        return x + 1

    out = inc(tg.node(1.0, name="x")) * w
    out.backward("fb")
    problem = build_problem([w], "")
    assert [e.depth for e in problem.code] == [0]


def test_call_running_a_variables_code_shows_all_its_inner_steps():
    @tg.bundle(trainable=True, trace_inside=True)
    def solve(x):
        y = x + 1
        return y * y

    out = solve(tg.node(2, name="x"))
    out.backward("fb")
    problem = build_problem([solve.parameter], "")
    assert [(e.value, e.depth) for e in problem.code] == [
        ("solve1 = solve(x)", 0),
        ("add1 = x + 1", 1),
        ("mul1 = add1 * add1", 1),
    ]
    assert problem.code[0].note == "runs solve_code"


def test_nested_trace_inside_calls_are_indented_one_level_deeper():
    w = tg.parameter(2.0, name="w")

    @tg.bundle(trace_inside=True)
    def inner(x):
        return x * w

    @tg.bundle(trace_inside=True)
    def outer(x):
        return inner(x) + 1

    out = outer(tg.node(1.0, name="x"))
    out.backward("fb")
    text = render_problem(build_problem([w], ""))
    assert "outer1 = outer(x)  # reads w\n    inner1 = inner(x) ->2.0  # reads w\n        mul1 = x * w ->2.0\n" in text
    assert "    add1 = inner1 + 1 ->3.0\n" in text


def test_inner_steps_obey_the_prompt_budget_and_are_cut_before_outer_lines():
    w = tg.parameter(1.0, name="w")

    @tg.bundle(trace_inside=True)
    def long_chain(x):
        for i in range(200):
            x = x * w + i
        return x

    out = long_chain(tg.node(0.5, name="start")) + 1
    out.backward("much too large")
    problem = build_problem([w], "Improve it.")
    assert sum(1 for e in problem.code if e.depth) == 400
    full = render_problem(problem)
    text = render_problem(problem, budget_tokens=300)
    assert estimate_tokens(text) <= 300 < estimate_tokens(full)
    assert "long_chain1 = long_chain(start)" in text and "add1 = long_chain1 + 1" in text
    assert "more omitted" in text and "much too large" in text and "w=1.0" in text
