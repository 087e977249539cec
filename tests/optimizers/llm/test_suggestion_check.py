"""Checking suggested values: conversion to each kind, reasons for rejections."""

from __future__ import annotations

import pytest

import tracegrad as tg
from tracegrad.optimizers.llm.suggestions import Reply, check


def _vars(*params):
    return {p.name: p for p in params}


def test_numbers_are_converted_and_bounded():
    rate = tg.parameter(0.5, tg.Number(0, 1), name="rate")
    accepted, rejected = check({"rate": " 0.25 "}, _vars(rate))
    assert accepted == {rate: 0.25} and not rejected
    accepted, rejected = check({"rate": 7}, _vars(rate))
    assert not accepted
    assert rejected[0].name == "rate" and "7" in rejected[0].reason


@pytest.mark.parametrize("bad", ["many", True, None, [1], {"v": 1}, "nan", float("inf")])
def test_integer_rejects_what_is_not_an_integer(bad):
    k = tg.parameter(3, tg.Integer(1, 10), name="k")
    accepted, rejected = check({"k": bad}, _vars(k))
    assert not accepted
    assert rejected[0].name == "k" and rejected[0].reason


def test_choice_stays_in_its_set():
    mode = tg.parameter("fast", tg.Choice(("fast", "careful")), name="mode")
    assert check({"mode": "careful"}, _vars(mode))[0] == {mode: "careful"}
    _, rejected = check({"mode": "sloppy"}, _vars(mode))
    assert "not one of the options" in rejected[0].reason


def test_text_accepts_numbers_as_text_but_not_structures():
    prompt = tg.parameter("hi", name="prompt")
    assert check({"prompt": 42}, _vars(prompt))[0] == {prompt: "42"}
    _, rejected = check({"prompt": {"a": 1}}, _vars(prompt))
    assert rejected and rejected[0].name == "prompt"


@pytest.mark.parametrize(
    ("current", "suggested", "taken"),
    [
        ("Hello", "'hello there.'", "hello there."),  # the literal the prompt showed, quotes copied
        ("Hello", '"it\'s here"', "it's here"),
        ("'quoted'", "'still quoted'", "'still quoted'"),  # the current value is quoted: so may the new one be
        ("Hello", "'a' and 'b'", "'a' and 'b'"),  # not one literal
        ("Hello", "'unbalanced", "'unbalanced"),
        ("Hello", "plain text", "plain text"),
    ],
)
def test_text_given_as_a_python_literal_is_unquoted(current, suggested, taken):
    line = tg.parameter(current, name="line")
    assert check({"line": suggested}, _vars(line))[0] == {line: taken}


@tg.bundle(trainable=True)
def area(w, h):
    """Area of a rectangle."""
    return w + h


def test_code_in_a_markdown_fence_is_unwrapped():
    fenced = "```python\ndef area(w, h):\n    return w * h\n```"
    accepted, rejected = check({"area_code": fenced}, _vars(area.parameter))
    assert not rejected
    assert accepted[area.parameter].startswith("def area(w, h):")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("def area(w, h):\n    return w *\n", "does not parse"),
        ("def surface(w, h):\n    return w * h\n", "area"),
        ("def area(w):\n    return w * w\n", "signature"),
        (123, "string"),
    ],
)
def test_bad_code_is_rejected_with_a_reason(code, reason):
    accepted, rejected = check({"area_code": code}, _vars(area.parameter))
    assert not accepted
    assert reason in rejected[0].reason


def test_unknown_names_are_rejected_listing_the_known_ones():
    a = tg.parameter(1.0, name="alpha")
    _, rejected = check({"beta": 2.0}, _vars(a))
    assert rejected[0].name == "beta"
    assert "alpha" in rejected[0].reason


def test_long_rejected_values_are_previewed_briefly():
    a = tg.parameter(1.0, name="alpha")
    _, rejected = check({"alpha": "x" * 10_000}, _vars(a))
    assert len(rejected[0].value) <= 200


@pytest.mark.parametrize(
    ("data", "suggestion"),
    [
        ({"reasoning": "r", "suggestion": {"a": 1}}, {"a": 1}),
        ({"suggestion": None}, {}),
        ({"reasoning": None, "answer": {"x": 1}}, {}),
        ({"suggestion": '{"a": 2}'}, {"a": 2}),
        ({"reasoning": "top-level by mistake", "a": 3}, {"a": 3}),
    ],
)
def test_reply_schema_is_lenient_about_shape(data, suggestion):
    reply = Reply.model_validate(data)
    assert reply.suggested({"a": None}) == suggestion
    assert isinstance(reply.reasoning, str)
    assert reply.answer is None or isinstance(reply.answer, str)
