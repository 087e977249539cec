"""Saved traces: a JSON file of what a picture shows, read back whole; any malformed file is refused clearly."""

from __future__ import annotations

import json

import pytest

import tracegrad as tg


def traced():
    prompt = tg.node("Say {q}", trainable=True, name="prompt")
    source = "def shout(text):\n    return text.upper()\n"
    code = tg.node(
        source, trainable=True, name="shout", kind=tg.Code("shout", (("text", "POSITIONAL_OR_KEYWORD", False),))
    )
    question = tg.node("hi", name="question")

    @tg.bundle()
    def fill(template, q):
        """Fill the template."""
        return template.format(q=q)

    out = fill(prompt, question) + "!"
    out.backward("be louder")
    return prompt, code, question, out


def test_a_saved_trace_reads_back_with_the_names_values_edges_and_feedback(tmp_path):
    *_, out = traced()
    path = tg.save_trace(out, tmp_path / "run" / "trace.json")
    assert path == tmp_path / "run" / "trace.json"
    saved = tg.load_trace(path)
    assert isinstance(saved, tg.SavedTrace)
    names = [n.name for n in saved.nodes]
    assert names == ["prompt", "question", "fill1", "add1"]
    assert saved.node("prompt").kind == "text" and saved.node("prompt").value == "'Say {q}'"
    assert saved.node("prompt").reached_by == ("add1",)
    fill = saved.node("fill1")
    assert (fill.type, fill.operation, fill.call) == ("operation", "fill", "fill(prompt, question)")
    assert [saved.nodes[i].name for i in fill.parents] == ["prompt", "question"]
    assert fill.description == "Fill the template."
    assert saved.outputs == [saved.node("add1")] and saved.node("add1").feedback == ("be louder",)
    assert json.loads(path.read_text())["format"] == "tracegrad-trace"
    assert tg.load_trace(tg.save_trace(out, tmp_path / "again.json")) == saved  # the same trace, the same file


def test_saving_only_the_part_relevant_to_chosen_parameters(tmp_path):
    a = tg.node(1.0, trainable=True, name="a")
    b = tg.node(2.0, trainable=True, name="b")
    out = (a * 3) + (b - 1)
    saved = tg.load_trace(tg.save_trace(out, tmp_path / "t.json", parameters=[a]))
    assert saved.parameters == ("a",)
    assert {n.name for n in saved.nodes} == {"a", "mul1", "sub1", "add1"}  # sub1 is an input of add1 only


def test_errors_and_code_are_saved_as_text(tmp_path):
    x = tg.node("a", trainable=True, name="x")
    with pytest.raises(tg.ExecutionError) as info:
        x + 1
    saved = tg.load_trace(tg.save_trace(info.value.node, tmp_path / "t.json"))
    error = saved.nodes[-1]
    assert error.type == "error" and error.value.startswith("TypeError: ")
    _, code, _, _ = traced()
    saved = tg.load_trace(tg.save_trace(code + "", tmp_path / "c.json"))
    assert saved.node("shout").value == "def shout(text):\n    return text.upper()"


def test_values_are_previews_never_whole(tmp_path):
    big = tg.node("x" * 100_000, name="big")
    text = tg.save_trace(big + "y", tmp_path / "t.json").read_text()
    assert len(text) < 10_000 and "truncated" in text


def test_saving_refuses_what_is_not_a_node(tmp_path):
    with pytest.raises(tg.TracegradError, match="expected"):
        tg.save_trace("not a node", tmp_path / "t.json")
    with pytest.raises(tg.TracegradError, match="no nodes"):
        tg.save_trace([], tmp_path / "t.json")
    x = tg.node(1)
    with pytest.raises(tg.TracegradError, match="trainable"):
        tg.save_trace(x + 1, tmp_path / "t.json", parameters=[x])
    assert not (tmp_path / "t.json").exists()


def valid() -> dict:
    return {
        "format": "tracegrad-trace",
        "version": 1,
        "parameters": None,
        "nodes": [
            {"name": "a", "type": "parameter", "value": "1", "kind": "number"},
            {"name": "b", "type": "operation", "value": "2", "parents": [0], "operation": "f", "output": True},
        ],
    }


def hostile():
    def edit(change):
        data = valid()
        change(data)
        return json.dumps(data)

    yield "not json", "Invalid JSON"
    yield "[" * 100_000, "not a saved trace"
    yield "", "Invalid JSON"
    yield '"a string"', "object"
    yield json.dumps({"format": "something else", "version": 1, "nodes": []}), "format"
    yield edit(lambda d: d.update(version=2)), "format version 2"
    yield edit(lambda d: d.update(version=True)), "version"
    yield edit(lambda d: d.pop("nodes")), "nodes"
    yield edit(lambda d: d.update(nodes=[])), "no nodes"
    yield edit(lambda d: d.update(nodes={"a": 1})), "nodes"
    yield edit(lambda d: d["nodes"][1].update(parents=[1])), "not an earlier node"
    yield edit(lambda d: d["nodes"][1].update(parents=[-1])), "not an earlier node"
    yield edit(lambda d: d["nodes"][1].update(parents=[5])), "not an earlier node"
    yield edit(lambda d: d["nodes"][1].update(parents=[True])), "parents"
    yield edit(lambda d: d["nodes"][1].update(parents=[0.0])), "parents"
    yield edit(lambda d: d["nodes"][1].update(name="a")), "two nodes are named 'a'"
    yield edit(lambda d: d["nodes"][1].update(name="")), "name"
    yield edit(lambda d: d["nodes"][1].update(type="module")), "type"
    yield edit(lambda d: d["nodes"][1].update(value={"nested": [1]})), "value"
    yield edit(lambda d: d["nodes"][1].update(feedback="not a list")), "feedback"
    yield edit(lambda d: d["nodes"][1].update(output="yes")), "output"
    yield edit(lambda d: d["nodes"].append(None)), "nodes.2"
    yield edit(lambda d: d["nodes"][0].pop("value")), "value"


@pytest.mark.parametrize(("text", "said"), list(hostile()))
def test_a_malformed_file_is_one_clear_error(tmp_path, text, said):
    path = tmp_path / "trace.json"
    path.write_text(text)
    with pytest.raises(tg.TracegradError, match=said) as info:
        tg.load_trace(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert path.read_text() == text  # loading changes nothing


def test_a_missing_unreadable_or_binary_file_is_a_clear_error(tmp_path):
    with pytest.raises(tg.TracegradError, match="no saved trace"):
        tg.load_trace(tmp_path / "missing.json")
    with pytest.raises(tg.TracegradError, match="cannot read"):
        tg.load_trace(tmp_path)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(tg.TracegradError, match="not a saved trace"):
        tg.load_trace(tmp_path / "binary.json")


def test_unknown_fields_are_ignored_so_newer_writers_stay_readable(tmp_path):
    data = valid()
    data["written_by"] = "a later tracegrad"
    data["nodes"][0]["colour"] = "red"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    saved = tg.load_trace(path)
    assert [n.name for n in saved.nodes] == ["a", "b"] and saved.nodes[1].parents == (0,)
