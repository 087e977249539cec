"""backward(feedback): reaches every parameter upstream (only those), accumulates, clears."""

from __future__ import annotations

import gc
import weakref

import pytest

import tracegrad as tg


def values(node):
    return [f.value for f in node.feedback]


def test_feedback_reaches_every_parameter_upstream_and_only_those():
    p = tg.node(2, trainable=True, name="p")
    q = tg.node(3, trainable=True, name="q")
    unrelated = tg.node(5, trainable=True, name="unrelated")
    c = tg.node(10, name="c")
    out = (p * c) + q
    other = unrelated + 1
    out.backward("too big")
    assert values(p) == ["too big"]
    assert values(q) == ["too big"]
    assert values(unrelated) == []
    assert other.feedback == []


def test_feedback_records_the_output_and_the_value():
    p = tg.node("x", trainable=True)
    out = p + "!"
    out.backward("shout less")
    (entry,) = p.feedback
    assert isinstance(entry, tg.Feedback)
    assert entry.output is out
    assert entry.value == "shout less"
    assert values(out) == ["shout less"]


def test_feedback_given_as_a_node_is_its_value():
    p = tg.node(1, trainable=True)
    out = p + 1
    out.backward(tg.node("a note"))
    assert values(p) == ["a note"]


def test_plain_nodes_and_intermediates_do_not_keep_feedback():
    p = tg.node(1, trainable=True)
    c = tg.node(2)
    mid = p + c
    out = mid * 2
    out.backward("fb")
    assert c.feedback == []
    assert mid.feedback == []


def test_backward_on_a_parameter_itself():
    p = tg.node(1, trainable=True)
    p.backward("direct")
    assert values(p) == ["direct"]


def test_several_outputs_and_calls_accumulate():
    p = tg.node(1, trainable=True)
    out1 = p + 1
    out2 = p * 5
    out1.backward("a")
    out2.backward("b")
    out1.backward("c")
    assert values(p) == ["a", "b", "c"]
    assert [id(f.output) for f in p.feedback] == [id(out1), id(out2), id(out1)]


def test_zero_feedback_on_an_output_clears_it_and_everything_upstream():
    p = tg.node(1, trainable=True)
    q = tg.node(2, trainable=True)
    out = p + q
    out.backward("x")
    out.backward("y")
    out.zero_feedback()
    assert p.feedback == []
    assert q.feedback == []
    assert out.feedback == []
    out.backward("z")
    assert values(p) == ["z"]


def test_zero_feedback_on_a_parameter():
    p = tg.node(1, trainable=True)
    q = tg.node(2, trainable=True)
    out = p + q
    out.backward("x")
    p.zero_feedback()
    assert p.feedback == []
    assert values(q) == ["x"]


def test_feedback_list_is_a_copy():
    p = tg.node(1, trainable=True)
    (p + 1).backward("x")
    p.feedback.clear()
    assert values(p) == ["x"]


def test_diamond_gives_the_feedback_once_per_call():
    p = tg.node(3, trainable=True)
    left = p + 1
    right = p * 2
    out = left + right
    out.backward("once")
    assert values(p) == ["once"]
    twice = p + p
    twice.backward("again")
    assert values(p) == ["once", "again"]


def test_many_diamonds_each_parameter_once():
    p = tg.node(1, trainable=True)
    x = p
    for _ in range(200):
        x = (x + 1) + (x * 1)  # each level uses the previous one twice
    x.backward("fb")
    assert values(p) == ["fb"]


def test_error_node_backward_reaches_parameters_of_the_failed_call():
    p = tg.node("a", trainable=True)
    q = tg.node(5, trainable=True)
    mid = p + "b"
    with pytest.raises(tg.ExecutionError) as info:
        mid + q
    info.value.node.backward(str(info.value))
    assert values(p) == [str(info.value)]
    assert values(q) == [str(info.value)]


# -- large graphs ---------------------------------------------------------------------


def test_chain_of_10000_nodes():
    p = tg.node(0, trainable=True)
    x = p
    for _ in range(10_000):
        x = x + 1
    assert x.data == 10_000
    x.backward("long chain")
    assert values(p) == ["long chain"]
    sg = tg.subgraph([p])
    assert len(sg.nodes) == 10_001
    assert len(sg.operations) == 10_000
    assert sg.nodes[0] is p and sg.nodes[-1] is x
    graph = tg.to_networkx(x)
    assert graph.number_of_nodes() == 10_001
    x.zero_feedback()
    assert p.feedback == []


def test_fan_in_of_10000_parameters():
    params = [tg.node(str(i % 10), trainable=True) for i in range(10_000)]
    total = tg.apply(lambda *xs: "".join(xs), *params)
    assert len(total.data) == 10_000
    total.backward("sum is wrong")
    assert all(values(p) == ["sum is wrong"] for p in params)
    sg = tg.subgraph(params[:3])
    assert [id(p) for p in sg.parameters] == [id(p) for p in params[:3]]
    assert len(sg.nodes) == 10_001


def test_chain_of_10000_bundle_calls():
    @tg.bundle()
    def inc(x):
        return x + 1

    p = tg.node(0, trainable=True)
    x = p
    for _ in range(10_000):
        x = inc(x)
    x.backward("fb")
    assert values(p) == ["fb"]


def _chain(n):
    p = tg.node(0, trainable=True)
    x = p
    for _ in range(n):
        x = x + 1
    return p, x


@pytest.mark.slow
def test_chain_of_100000_nodes_backward_subgraph_and_release():
    p, x = _chain(100_000)
    x.backward("fb")
    assert values(p) == ["fb"]
    sg = tg.subgraph([p])
    assert len(sg.nodes) == 100_001
    assert tg.to_networkx(x).number_of_edges() == 100_000
    ref = weakref.ref(x)
    del sg, x, p
    gc.collect()
    assert ref() is None  # dropping a deep graph neither crashes nor leaks


@pytest.mark.slow
def test_fan_in_and_fan_out_of_100000_nodes():
    p = tg.node(1, trainable=True)
    outs = [p + i for i in range(100_000)]
    total = tg.apply(lambda *xs: sum(xs), *outs)
    total.backward("fb")
    assert values(p) == ["fb"]
    assert len(tg.subgraph([p]).nodes) == 100_002
