"""Query API: subgraphs of parameters, code lines, and the networkx export."""

from __future__ import annotations

import networkx as nx
import pytest

import tracegrad as tg


def ids(nodes):
    return [id(n) for n in nodes]


def is_topological(nodes):
    position = {id(n): i for i, n in enumerate(nodes)}
    return all(position[id(p)] < position[id(n)] for n in nodes for p in n.parents if id(p) in position)


@pytest.fixture
def pipeline():
    """prompt -> format -> shout (bundle) -> out; with an unrelated branch and a constant input."""

    @tg.bundle()
    def shout(text, times):
        """Make the text loud."""
        return text.upper() + "!" * times

    prompt = tg.node("hi {x}", trainable=True, name="prompt")
    times = tg.node(2, trainable=True, name="times")
    other = tg.node("unused", trainable=True, name="other")
    x = tg.node("bob", name="x")
    filled = prompt.format(x=x)
    loud = shout(filled, times)
    out = loud + "?"
    side = other + "!"
    out.backward("too loud")
    return {"prompt": prompt, "times": times, "other": other, "x": x, "filled": filled, "loud": loud,
            "out": out, "side": side}  # fmt: skip


def test_subgraph_connects_the_parameter_to_the_outputs(pipeline):
    p = pipeline
    sg = tg.subgraph([p["prompt"]])
    assert isinstance(sg, tg.Subgraph)
    assert is_topological(sg.nodes)
    assert ids(sg.parameters) == ids([p["prompt"]])
    assert ids(sg.outputs) == ids([p["out"]])
    assert ids(sg.operations) == ids([p["filled"], p["loud"], p["out"]])
    assert ids(sg.intermediates) == ids([p["filled"], p["loud"]])
    # direct inputs of those operations that do not depend on the parameter
    assert set(ids(sg.inputs)) == set(ids([p["x"], p["times"]]))
    assert set(ids(sg.nodes)) == set(ids([p["prompt"], p["x"], p["filled"], p["times"], p["loud"], p["out"]]))
    assert id(p["other"]) not in ids(sg.nodes)
    assert id(p["side"]) not in ids(sg.nodes)
    assert [(id(f.output), f.value) for f in sg.feedback] == [(id(p["out"]), "too loud")]


def test_subgraph_gives_values_and_descriptions(pipeline):
    p = pipeline
    sg = tg.subgraph([p["prompt"]])
    by_id = {id(n): n for n in sg.nodes}
    assert by_id[id(p["filled"])].data == "hi bob"
    assert by_id[id(p["loud"])].data == "HI BOB!!"
    assert by_id[id(p["out"])].data == "HI BOB!!?"
    assert p["loud"].description == "Make the text loud."
    assert all(isinstance(n.description, str) and n.description for n in sg.operations)
    assert p["loud"].inputs["text"] is p["filled"]
    assert p["loud"].inputs["times"] is p["times"]


def test_subgraph_of_several_parameters(pipeline):
    p = pipeline
    sg = tg.subgraph([p["prompt"], p["times"]])
    assert ids(sg.parameters) == ids([p["prompt"], p["times"]])
    assert ids(sg.inputs) == ids([p["x"]])
    assert len(sg.feedback) == 1  # the same feedback is not repeated


def test_subgraph_is_minimal():
    p = tg.node(1, trainable=True, name="p")
    q = tg.node(2, trainable=True, name="q")
    q2 = q * 2
    mid = p + 1
    out = mid + q2
    not_given_feedback = p * 100
    out.backward("fb")
    sg = tg.subgraph([p])
    assert ids(sg.nodes) == ids([p, mid, q2, out])  # parents first, in the order out took them
    assert ids(sg.inputs) == ids([q2])  # a direct input, not what it was computed from
    assert id(q) not in ids(sg.nodes)
    assert id(not_given_feedback) not in ids(sg.nodes)


def test_subgraph_only_covers_outputs_that_received_feedback():
    p = tg.node(1, trainable=True)
    a = p + 1
    b = p + 2
    a.backward("only a")
    sg = tg.subgraph([p])
    assert ids(sg.outputs) == ids([a])
    assert id(b) not in ids(sg.nodes)


def test_subgraph_with_several_outputs():
    p = tg.node(1, trainable=True)
    a = p + 1
    b = a * 2
    c = a * 3
    b.backward("b")
    c.backward("c")
    sg = tg.subgraph([p])
    assert ids(sg.outputs) == ids([b, c])
    assert ids(sg.intermediates) == ids([a])
    assert [f.value for f in sg.feedback] == ["b", "c"]


def test_subgraph_with_explicit_outputs():
    p = tg.node(1, trainable=True)
    a = p + 1
    b = p + 2
    a.backward("fa")
    sg = tg.subgraph([p], outputs=[b])
    assert ids(sg.outputs) == ids([b])
    assert sg.feedback == []


def test_subgraph_of_a_parameter_without_feedback_is_empty():
    p = tg.node(1, trainable=True)
    p + 1
    sg = tg.subgraph([p])
    assert sg.nodes == [] and sg.feedback == [] and sg.outputs == []


def test_subgraph_after_zero_feedback_is_empty():
    p = tg.node(1, trainable=True)
    out = p + 1
    out.backward("x")
    out.zero_feedback()
    assert tg.subgraph([p]).nodes == []


def test_subgraph_includes_error_nodes():
    p = tg.node("a", trainable=True)
    with pytest.raises(tg.ExecutionError) as info:
        p + 1
    err = info.value.node
    err.backward("type error")
    sg = tg.subgraph([p])
    assert ids(sg.outputs) == ids([err])
    assert ids(sg.nodes) == ids([p, err])


def test_names_are_unique_within_a_subgraph():
    p = tg.node("a", trainable=True, name="v")
    q = tg.node("b", name="v")
    r = tg.node("c", name="v")
    out = p + q + r
    out.backward("x")
    sg = tg.subgraph([p])
    names = [sg.names[n] for n in sg.nodes]
    assert len(set(names)) == len(names)
    assert sg.name(p) == sg.names[p]


# -- code lines ----------------------------------------------------------------------------


def test_code_line_of_an_operator():
    a = tg.node(1, trainable=True, name="a")
    b = tg.node(2, name="b")
    out = a + b
    out.backward("x")
    sg = tg.subgraph([a])
    assert sg.code_line(out) == "add1 = a + b"


def test_code_line_with_constants_and_methods():
    t = tg.node("x {y}", trainable=True, name="t")
    out = t.format(y="z")
    out.backward("x")
    line = tg.subgraph([t]).code_line(out)
    assert line.startswith("format1 = ")
    assert "t" in line and "format" in line and "'z'" in line


def test_code_line_of_a_bundle():
    @tg.bundle()
    def answer(question, style="short"):
        return question + style

    q = tg.node("why?", trainable=True, name="question_param")
    out = answer(q, style="long")
    out.backward("x")
    line = tg.subgraph([q]).code_line(out)
    assert line == "answer1 = answer(question_param, style='long')"


def test_code_line_mentions_captured_reads():
    secret = tg.node("s", trainable=True, name="secret")

    @tg.bundle()
    def peek(x):
        return x + secret.data

    out = peek(tg.node("a", name="a"))
    out.backward("x")
    line = tg.subgraph([secret]).code_line(out)
    assert "secret" in line


# -- networkx ------------------------------------------------------------------------------------


def test_to_networkx_exports_typed_nodes_and_labelled_edges():
    p = tg.node(1, trainable=True, name="p")
    c = tg.node(2, name="c")
    s = p + c
    with pytest.raises(tg.ExecutionError) as info:
        s + "x"
    err = info.value.node
    err.backward("broken")
    g = tg.to_networkx(err)
    assert isinstance(g, nx.DiGraph)
    assert set(g.nodes) == {"p", "c", "add1", "error_add1"}
    assert g.nodes["p"]["type"] == "parameter"
    assert g.nodes["c"]["type"] == "value"
    assert g.nodes["add1"]["type"] == "operation"
    assert g.nodes["error_add1"]["type"] == "error"
    assert g.nodes["p"]["node"] is p
    assert g.nodes["add1"]["node"] is s and g.nodes["add1"]["value"] == 3
    assert g.nodes["p"]["feedback"] == ["broken"]
    assert g.nodes["error_add1"]["node"] is err and g.nodes["error_add1"]["feedback"] == ["broken"]
    assert g.edges["p", "add1"]["argument"] == "a"
    assert g.edges["c", "add1"]["argument"] == "b"
    assert g.edges["add1", "error_add1"]["argument"] == "a"
    assert nx.is_directed_acyclic_graph(g)


def test_to_networkx_labels_bundle_arguments_by_name():
    @tg.bundle()
    def combine(left, right):
        """Combine two parts."""
        return left + right

    a = tg.node("l", name="left_value")
    b = tg.node("r", name="right_value")
    out = combine(a, right=b)
    g = tg.to_networkx(out)
    assert g.edges["left_value", "combine1"]["argument"] == "left"
    assert g.edges["right_value", "combine1"]["argument"] == "right"
    assert g.nodes["combine1"]["description"] == "Combine two parts."


def test_to_networkx_of_several_outputs_and_clashing_names():
    a = tg.node(1, name="n")
    b = tg.node(2, name="n")
    g = tg.to_networkx([a + 1, b + 1])
    assert g.number_of_nodes() == 4
    assert g.number_of_edges() == 2
    assert {d["node"].data for _, d in g.nodes(data=True)} == {1, 2, 3}


def test_subgraph_to_networkx():
    p = tg.node(1, trainable=True, name="p")
    out = (p + 1) * 2
    out.backward("x")
    g = tg.subgraph([p]).to_networkx()
    assert g.number_of_nodes() == 3
    assert nx.is_directed_acyclic_graph(g)
    assert next(iter(nx.topological_sort(g))) == "p"


def test_the_order_and_names_do_not_depend_on_how_threads_interleaved():
    import threading

    prompt = tg.parameter("p", name="prompt")

    def example(i, started):
        started.wait()
        x = tg.node(f"x{i}")
        return (prompt + x).upper() + "!"

    def run():
        prompt.clear_feedback()
        started = threading.Event()
        outs = [None] * 6

        def work(i):
            outs[i] = example(i, started)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        started.set()
        for t in threads:
            t.join()
        joined = tg.apply(lambda *xs: list(xs), *outs, name="batch")
        joined.backward("fb")
        sg = tg.subgraph([prompt])
        return [sg.code_line(n) for n in sg.operations]

    first = run()
    assert all(run() == first for _ in range(5))
    assert first[0].startswith("add1 = prompt + str1")
