"""The one naming scheme for nodes: ``unique_names``, shared by subgraphs and pictures."""

from __future__ import annotations

import tracegrad as tg
from tracegrad.trace import topological, unique_names


def graph_names(*outputs):
    return unique_names(topological(outputs))  # what a picture of the outputs names


def test_unnamed_nodes_are_numbered_per_base_name_in_order():
    a, b = tg.node(1), tg.node(2)
    s = tg.node("x")
    first = a + b
    second = first + 1
    names = unique_names([a, b, s, first, second])
    assert [names[n] for n in (a, b, s, first, second)] == ["int1", "int2", "str1", "add1", "add2"]


def test_given_names_are_kept_and_repeats_numbered():
    a = tg.node(1, name="words")
    b = tg.node(2, name="words")
    c = tg.node(3, name="words")
    names = unique_names([a, b, c])
    assert [names[n] for n in (a, b, c)] == ["words", "words_2", "words_3"]


def test_trainable_given_names_take_precedence():
    plain = tg.node("a", name="prompt")
    param = tg.parameter("b", name="prompt")
    names = unique_names([plain, param])
    assert names[param] == "prompt"
    assert names[plain] == "prompt_2"


def test_numbering_avoids_given_names():
    given = tg.node(1, name="add1")
    out = tg.node(2) + 1
    names = unique_names([given, out])
    assert names[given] == "add1"
    assert names[out] == "add2"


def test_a_given_name_is_kept_even_if_it_looks_like_a_numbered_repeat():
    a = tg.node(1, name="w")
    b = tg.node(2, name="w")
    c = tg.node(3, name="w_2")
    names = unique_names([a, b, c])
    assert names[c] == "w_2"
    assert names[b] == "w_3"
    assert len(set(names.values())) == 3


def test_base_names_ending_in_a_digit_get_an_underscore():
    op = tg.apply(lambda x: x, tg.node(1), name="log2")
    names = unique_names([op])
    assert names[op] == "log2_1"


def test_base_names_sharing_a_prefix_share_the_numbering():
    a = tg.apply(lambda x: x, 1, name="x2")
    b = tg.apply(lambda x: x, 2, name="x2_")
    names = unique_names([a, b])
    assert [names[a], names[b]] == ["x2_1", "x2_2"]


def test_unnamed_parameters_are_param():
    p = tg.parameter(1.0)
    assert unique_names([p])[p] == "param1"


def test_names_are_never_serial_numbers():
    nodes = [tg.node(i) for i in range(5)]
    names = unique_names(nodes)
    assert list(names.values()) == ["int1", "int2", "int3", "int4", "int5"]


def test_subgraph_names_match_the_picture_of_the_same_outputs():
    p = tg.parameter("hi", name="prompt")
    unrelated = tg.node(1) + 2  # upstream of the output, outside the subgraph
    x = tg.node("x", name="prompt")
    out = tg.apply(lambda text, n: f"{text}{n}", p + x, unrelated, name="join")
    out.backward("fb")
    sg = tg.subgraph([p])
    picture = graph_names(*sg.outputs)
    assert sg.names == {n: picture[n] for n in sg.nodes}
    assert sg.names[p] == "prompt"
    assert sg.names[x] == "prompt_2"


def test_subgraph_names_count_nodes_outside_the_subgraph():
    q = tg.parameter(1, name="q")
    p = tg.parameter(1, name="p")
    hidden = q + 1  # add1: upstream of the output, but not in p's subgraph
    first = hidden * 3  # a direct input of the output: in the subgraph
    second = p + 1  # add2, not add1
    out = first - second
    out.backward("fb")
    sg = tg.subgraph([p])
    assert id(hidden) not in {id(n) for n in sg.nodes}
    assert sg.names[second] == "add2"
    assert graph_names(out)[hidden] == "add1"


def test_unique_names_is_linear_on_many_repeats():
    nodes = [tg.node(i, name="same") for i in range(20_000)]
    names = unique_names(nodes)
    assert len(set(names.values())) == len(nodes)
    assert names[nodes[-1]] == "same_20000"


def test_code_line_reads_comment_only_in_code_lines():
    secret = tg.parameter("s", name="secret")

    @tg.bundle()
    def peek(x):
        return x + secret.data

    out = peek(tg.node("a", name="a"))
    out.backward("x")
    sg = tg.subgraph([secret])
    assert sg.code_line(out) == "peek1 = peek(a)  # also reads secret"
    assert tg.trace.call_expression(out, sg.names) == "peek(a)"


def test_call_expression_cuts_constants():
    n = tg.node("t", name="t")
    out = n + "x" * 200
    text = tg.trace.call_expression(out, {n: "t"}, max_chars=20)
    assert text.startswith("t + 'xxx") and text.endswith("...")
    assert len(text) == len("t + ") + 20
