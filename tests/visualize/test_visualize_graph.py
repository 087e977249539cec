"""Pictures of traces: every node and edge, styled by type and kind, named as the prompt names them."""

from __future__ import annotations

import json
import re
import shutil

import pytest

import tracegrad as tg
from tracegrad.visualize.styles import KIND_FILLS, STYLES

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")


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


def boxes(source: str) -> dict[str, str]:
    """DOT node id -> its whole attribute list."""
    return dict(re.findall(r"^\t(\w+) \[(.*)\]$", source, re.MULTILINE))


def box_of(source: str, first_line: str) -> str:
    found = [attrs for attrs in boxes(source).values() if attrs.startswith(f'label="{first_line}\\')]
    assert len(found) == 1, (first_line, source)
    return found[0]


def test_every_node_and_edge_is_drawn_with_its_call_value_and_feedback():
    _, _, y = small_trace()
    source = tg.to_dot(y)
    assert isinstance(source, str) and source.startswith("digraph")
    assert re.findall(r"^\t(n\d) -> (n\d)$", source, re.MULTILINE) == [("n0", "n1"), ("n1", "n3"), ("n2", "n3")]
    assert 'label="x (number)\\n2.0\\nfeedback from add1\\n"' in source  # kind, value, and who reached it
    assert 'label="scale1\\nscale(x, 3)\\n= 6.0\\n"' in source  # name, call, value
    assert 'label="bias\\n1.0\\n"' in source
    assert "feedback: make it smaller\\l" in source
    assert re.search(r"^\tn3 -> n3_fb0 \[", source, re.MULTILINE)  # the note hangs off the output
    assert 'tooltip="Multiply value by k."' in box_of(source, "scale1")
    assert isinstance(tg.visualize(y), __import__("graphviz").Digraph)


def test_operations_inputs_outputs_errors_and_parameters_look_different():
    x = tg.node(2.0, trainable=True, name="x")
    given = tg.node(5, name="given")
    mid = x * given
    out = mid + 1
    with pytest.raises(tg.ExecutionError) as info:
        mid + "text"
    source = tg.to_dot([out, info.value.node])
    looks = {
        "parameter": box_of(source, "x (number)"),
        "input": box_of(source, "given"),
        "operation": box_of(source, "mul1"),
        "output": box_of(source, "add1"),
        "error": box_of(source, "error_add1"),
    }
    assert len({attrs.split('" ', 1)[1] for attrs in looks.values()}) == 5  # five distinct styles
    assert "peripheries=2" in looks["output"] and "shape=octagon" in looks["error"]
    assert "TypeError: unsupported operand" in looks["error"]
    assert "shape=ellipse" in looks["input"] and "rounded" in looks["parameter"]


def test_each_parameter_kind_has_its_own_fill():
    code = "def f(a):\n    return a\n"
    params = [
        tg.node("hello", trainable=True, name="t", kind=tg.Text()),
        tg.node(code, trainable=True, name="c", kind=tg.Code("f", (("a", "POSITIONAL_OR_KEYWORD", False),))),
        tg.node(0.5, trainable=True, name="num", kind=tg.Number(0, 1)),
        tg.node(3, trainable=True, name="i", kind=tg.Integer(1, 9)),
        tg.node("b", trainable=True, name="ch", kind=tg.Choice(("a", "b"))),
        tg.node({"k": [1]}, trainable=True, name="s", kind=tg.Structure()),
    ]
    kinds = ["text", "code", "number", "integer", "choice", "json"]
    if __import__("importlib").util.find_spec("jax"):
        params.append(tg.node([1.0, 2.0], trainable=True, name="arr", kind=tg.Array()))
        kinds.append("array")
    source = tg.to_dot(params)
    fills = []
    for p, kind in zip(params, kinds, strict=True):
        attrs = box_of(source, f"{p.name} ({kind})")
        fills.append(re.search(r'fillcolor="(#\w+)"', attrs).group(1))
        assert fills[-1] == KIND_FILLS[kind]
    assert len(set(fills)) == len(fills)
    assert not set(fills) & {style["fillcolor"] for style in STYLES.values() if "fillcolor" in style}


def test_code_shows_its_lines_left_aligned():
    source = 'def f(a):\n\tif a:\n\t\treturn "{a}\\n"\n\treturn None\n'
    code = tg.node(source, trainable=True, name="f", kind=tg.Code("f", (("a", "POSITIONAL_OR_KEYWORD", False),)))
    attrs = box_of(tg.to_dot(code), "f (code)")
    assert 'def f(a):\\l    if a:\\l        return \\"{a}\\\\n\\"\\l    return None\\l' in attrs
    long = "def f(a):\n" + "".join(f"    a = a + {i}\n" for i in range(30)) + "    return a\n"
    code.data = long
    attrs = box_of(tg.to_dot(code, max_code_lines=5), "f (code)")
    assert attrs.count("\\l") == 6 and "… 27 more lines\\l" in attrs


@needs_dot
def test_any_user_text_draws_as_itself():
    hostile = 'q"uo\\te {brace} <b>html</b> \\N \\l ünïcødé ✓ \x1b[31m \ud800 end\\'
    n = tg.node(hostile, name='na"me<>{}')
    out = n + "!"
    out.backward(hostile)
    dot_source = tg.to_dot(out, max_value_chars=200)
    svg = __import__("graphviz").Source(dot_source).pipe(format="svg").decode("utf-8")
    text = __import__("html").unescape(svg)
    assert 'na"me<>{}' in text
    assert 'q"uo\\\\te {brace} <b>html</b> \\\\N \\\\l ünïcødé ✓ \\x1b[31m \\ud800 end\\\\' in text  # the repr
    assert 'feedback: q"uo\\te {brace} <b>html</b> \\N \\l ünïcødé ✓ \\x1b[31m \\ud800 end\\' in text


def test_long_values_are_shortened():
    n = tg.node("a" + "z" * 500, name="long")
    source = tg.to_dot(n + "!", max_value_chars=30)
    assert "z" * 40 not in source and "…" in source


def test_only_the_part_relevant_to_chosen_parameters():
    a = tg.node(1.0, trainable=True, name="a")
    b = tg.node(2.0, trainable=True, name="b")
    unrelated = tg.node(7.0, name="unrelated") * 2
    out = (a * 3) + (b - 1) + unrelated
    source = tg.to_dot(out, parameters=[a])
    firsts = {m.split("\\")[0] for m in re.findall(r'label="([^"]+)"', source)}
    assert {"a (number)", "mul1", "add1", "add2", "sub1", "mul2"} == firsts  # sub1, mul2: direct inputs
    assert "b (number)" not in firsts and "unrelated" not in firsts
    full = {m.split("\\")[0] for m in re.findall(r'label="([^"]+)"', tg.to_dot(out))}
    assert firsts < full and "mul1" in full  # the same names in the full picture
    with pytest.raises(tg.TracegradError, match="trainable"):
        tg.to_dot(out, parameters=[unrelated])


def test_a_loaded_trace_draws_like_the_live_one(tmp_path):
    _, _, y = small_trace()
    saved = tg.load_trace(tg.save_trace(y, tmp_path / "t.json"))
    assert tg.to_dot(saved) == tg.to_dot(y)
    with pytest.raises(tg.TracegradError, match="when it is saved"):
        tg.to_dot(saved, parameters=[])


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"max_nodes": 1}, "max_nodes"),
        ({"max_value_chars": "40"}, "max_value_chars"),
        ({"min_repeats": True}, "min_repeats"),
        ({"rankdir": "down"}, "rankdir"),
    ],
)
def test_bad_options_and_inputs_are_clear_errors(options, said):
    _, _, y = small_trace()
    with pytest.raises(tg.TracegradError, match=said):
        tg.to_dot(y, **options)


@pytest.mark.parametrize("bad", ["text", 3, [1, 2], []])
def test_what_is_not_a_node_is_refused(bad):
    with pytest.raises(tg.TracegradError):
        tg.visualize(bad)


def test_a_node_has_the_same_name_in_the_picture_and_in_the_prompt():
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
    labels = set(re.findall(r'label="([^"\\]+)', tg.to_dot(out)))
    picture_names = {label.split(" (")[0] for label in labels}
    assert set(names) <= picture_names, (names, sorted(picture_names))
    for variable in ("prompt", "words"):
        assert variable in prompt and variable in picture_names
