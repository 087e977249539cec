"""Big traces stay readable: loops and long chains fold into summary boxes, and a size limit cuts the rest."""

from __future__ import annotations

import random
import re
import shutil

import pytest

import tracegrad as tg


def labels(source: str) -> list[str]:
    return re.findall(r'^\t\w+ \[label="((?:[^"\\]|\\.)*)"', source, re.MULTILINE)


def edges(source: str) -> list[tuple[str, str]]:
    return re.findall(r"^\t(\w+) -> (\w+)", source, re.MULTILINE)


def test_a_repeated_loop_body_is_one_box_between_what_comes_before_and_after():
    w = tg.node(0.5, trainable=True, name="w")
    h = tg.node(1.0, name="h0")
    for _ in range(40):
        h = h * w + tg.node(0.1)
    out = h - 1
    out.backward("lower")
    source = tg.to_dot(out)
    loops = [text for text in labels(source) if text.startswith("repeated ")]
    assert loops == [
        "repeated 39 times: add → mul\\nadd1 … mul40 (78 operations, 39 inputs)\\nlast = " + loops[0].split("= ")[1]
    ]
    assert len(labels(source)) == 8  # w, h0, mul1, the loop, its last add, its input, the output, the feedback
    assert "w (number)" in "".join(labels(source))  # parameters are never folded
    folded = tg.to_dot(out, collapse=False)
    assert len(labels(folded)) == 1 + 1 + 40 * 3 + 1 + 1


def test_a_loop_stops_at_a_node_that_must_be_seen():
    h = tg.node(1.0, name="h0")
    for i in range(30):
        h = h + 1
        if i == 15:
            h.backward("here")  # feedback in the middle of the loop
    source = tg.to_dot(h)
    texts = labels(source)
    assert any(t.startswith("add16\\n") for t in texts)  # the node that got feedback is drawn on its own
    assert sum(t.startswith("repeated ") for t in texts) == 2


def test_a_long_chain_of_different_operations_keeps_its_ends():
    def step(k):
        def add_digit(s):
            return s + str(k)

        add_digit.__name__ = add_digit.__qualname__ = f"step{k}"
        return tg.bundle()(add_digit)

    value = tg.node("start", name="start")
    for k in range(20):
        value = step(k)(value)
    source = tg.to_dot(value, max_chain=8)
    texts = labels(source)
    chains = [t for t in texts if t.startswith("chain")]
    assert len(chains) == 1 and "step1_1 … step18_1 (18 operations)" in chains[0]
    assert len(texts) == 4  # start, the first operation, the chain, the output
    src = {e[0] for e in edges(source)}
    dst = {e[1] for e in edges(source)}
    assert "g0" in src and "g0" in dst  # wired between the ends
    assert len(labels(tg.to_dot(value, max_chain=100))) == 21


def test_an_input_used_outside_a_box_stays_visible():
    shared = tg.node(2.0, name="shared")
    h = tg.node(1.0, name="h0")
    for _ in range(10):
        h = h * shared
    out = h + shared
    texts = labels(tg.to_dot(out))
    assert any(t.startswith("shared\\n") for t in texts)
    assert any(t.startswith("repeated ") for t in texts)


def tangle(size: int) -> tg.Node:
    rng = random.Random(1)
    made = [tg.node(float(i), trainable=i < 5, name=f"p{i}") for i in range(10)]
    ops = (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * 0.5 + b)
    while len(made) < size:
        made.append(rng.choice(ops)(rng.choice(made), rng.choice(made[-30:])))
    return made[-1]


def test_past_the_limit_the_rest_is_one_marker_and_outputs_and_parameters_stay(tmp_path):
    out = tangle(2_000)
    source = tg.to_dot(out, max_nodes=50, collapse=False)
    texts = labels(source)
    assert len(texts) == 50
    more = [t for t in texts if "more nodes not drawn" in t]
    assert len(more) == 1
    hidden = int(re.search(r"… ([\d,]+) more nodes", more[0]).group(1).replace(",", ""))
    total = len(tg.load_trace(tg.save_trace(out, tmp_path / "t.json")).nodes)
    assert hidden == total - 49
    drawn_names = {t.split("\\")[0].split(" (")[0] for t in texts}
    assert {f"p{i}" for i in range(5)} <= drawn_names  # parameters are kept
    assert "peripheries=2" in source  # and the output
    assert any(src == "more" for src, _ in edges(source))  # the marker is wired to what it feeds
    assert len(labels(tg.to_dot(out, max_nodes=None, collapse=False))) == total


@pytest.mark.slow
def test_a_ten_thousand_node_trace_builds_and_renders(tmp_path):
    out = tangle(10_000)
    picture = tg.visualize(out)
    assert len(labels(picture.source)) <= 300
    if shutil.which("dot"):
        path = tg.render(out, tmp_path / "big.svg")
        assert b"more nodes not drawn" in path.read_bytes()
