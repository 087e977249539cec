"""Pictures of traces: every node and edge appears, styled by type; files are drawn."""

from __future__ import annotations

import shutil

import pytest

import tracegrad as tg


def small_trace():
    x = tg.node(2.0, trainable=True, name="x")
    bias = tg.node(1.0, name="bias")

    @tg.bundle()
    def scale(value, k):
        """Multiply value by k."""
        return value * k

    y = scale(x, 3) + bias
    y.backward("make it smaller")
    return x, bias, y


def test_to_dot_has_every_node_and_edge_of_the_trace():
    x, bias, y = small_trace()
    source = tg.to_dot(y).source
    for node in (x, bias, y, y.parents[0]):
        assert f"n{node.serial} " in source
    for child in (y, y.parents[0]):
        for parent in child.parents:
            assert f"n{parent.serial} -> n{child.serial}" in source
    assert "x (number)" in source  # parameters show their kind
    assert "scale(x, 3)" in source  # operations show their call
    assert "feedback: make it smaller" in source
    assert "#ffd8a8" in source and "#d0ebff" in source  # parameter and operation colours


def test_error_nodes_are_drawn_in_red_with_the_exception():
    x = tg.node("a", trainable=True, name="x")
    with pytest.raises(tg.ExecutionError) as info:
        x + 1
    source = tg.to_dot(info.value.node).source
    assert "TypeError" in source and "#ffc9c9" in source


def test_long_values_are_shortened_and_backslashes_escaped():
    n = tg.node("a\\b" + "z" * 500, name="long")
    label_text = tg.to_dot(n + "!", max_value_chars=30).source
    assert "z" * 40 not in label_text
    assert "a\\\\\\\\b" in label_text  # repr doubles the backslash, the label escapes both


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_render_writes_a_picture_file(tmp_path, fmt):
    *_, y = small_trace()
    path = tg.render(y, tmp_path / "trace", format=fmt)
    assert path == tmp_path / f"trace.{fmt}"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data


def test_a_node_has_the_same_name_in_the_picture_and_in_the_prompt():
    import json
    import re

    class Pipeline(tg.Module):
        def __init__(self):
            self.prompt = tg.node("Answer: {q}", trainable=True)
            self.words = tg.node(3, trainable=True, kind=tg.Integer(1, 20))

        @tg.bundle()
        def fill(self, template, question):
            """Fill the template."""
            return template.format(q=question)

        @tg.bundle()
        def cut(self, text, n):
            """Keep the first n words."""
            return " ".join(text.split()[:n])

        def forward(self, question):
            filled = self.fill(self.prompt, question)
            return self.cut(filled + " " + filled, self.words).upper()

    pipeline = Pipeline()
    out = pipeline(tg.node("what is the capital of France?"))
    transport = tg.ScriptedTransport([json.dumps({"reasoning": "", "answer": None, "suggestion": {}})])
    opt = tg.OptoPrime(pipeline, llm=tg.LLM("test/model", transport=transport, cache=False))
    opt.backward(out, "too short")
    opt.step()
    prompt = transport.requests[0].messages[-1]["content"]
    code = prompt.split("#Code", 1)[1].split("\n#", 1)[0]
    names = re.findall(r"^(\w[\w.]*) = ", code, re.MULTILINE)
    assert len(names) >= 4  # fill, add, add, cut, upper
    labels = set(re.findall(r'label="([^"\\]+)', tg.to_dot(out).source))
    picture_names = {label.splitlines()[0].split(" (")[0] for label in labels}
    assert set(names) <= picture_names, (names, sorted(picture_names))
    for variable in ("prompt", "words"):
        assert variable in prompt and variable in picture_names
