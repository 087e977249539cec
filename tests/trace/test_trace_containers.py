"""One rule for which containers are looked into: recording, running and walking agree."""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict, defaultdict, namedtuple

import pytest

import tracegrad as tg
from tracegrad.trace import iter_nodes, resolve
from tracegrad.trace.containers import children, find, is_container, replace

Pair = namedtuple("Pair", "left right")


@dataclasses.dataclass
class Box:
    item: object
    label: str = "box"


@dataclasses.dataclass(frozen=True)
class FrozenBox:
    item: object


def ids(nodes):
    return [id(n) for n in nodes]


def holders(n):
    """Each container kind holding the node ``n``, and how to read it back as JSON."""
    return {
        "ordered_dict": (OrderedDict(a=n, b=1), lambda v: json.dumps(v)),
        "namedtuple": (Pair(n, 2), lambda v: json.dumps(v)),
        "dataclass": (Box(n), lambda v: json.dumps(dataclasses.asdict(v))),
    }


@pytest.mark.parametrize("kind", ["ordered_dict", "namedtuple", "dataclass"])
def test_bundled_function_gets_the_value_inside_a_container(kind):
    n = tg.node({"k": [1, 2]}, name="n")
    container, dump = holders(n)[kind]
    seen = []

    @tg.bundle()
    def show(arg):
        seen.append(arg)
        return dump(arg)

    out = show(container)
    assert '"k": [1, 2]' in out.data
    assert type(seen[0]) is type(container)
    assert ids(out.parents) == [id(n)]


@pytest.mark.parametrize("kind", ["ordered_dict", "namedtuple", "dataclass"])
def test_apply_gets_the_value_inside_a_container(kind):
    n = tg.node({"k": 3}, name="n")
    container, dump = holders(n)[kind]
    out = tg.apply(dump, container, name="dump")
    assert '"k": 3' in out.data
    assert ids(out.parents) == [id(n)]


def test_a_node_repeated_in_a_container_is_one_parent():
    n = tg.node(1)
    out = tg.apply(lambda pair, box: pair.left + pair.right + box.item, Pair(n, n), Box(n))
    assert out.data == 3
    assert ids(out.parents) == [id(n)]


def test_a_plain_list_argument_is_the_same_object_inside_the_function():
    items = [1, 2]
    config = {"seen": 0}

    @tg.bundle()
    def grow(xs, cfg, x):
        xs.append(x)
        cfg["seen"] += 1
        return len(xs)

    grow(items, config, tg.node(3))
    assert items == [1, 2, 3]
    assert config == {"seen": 1}
    tg.apply(lambda xs: xs.append(4), items)
    assert items == [1, 2, 3, 4]


def test_resolve_keeps_types_and_default_factories():
    n = tg.node(5)
    dd = defaultdict(list, {"a": n})
    out = resolve(dd)
    assert type(out) is defaultdict and out.default_factory is list and out == {"a": 5}
    od = resolve(OrderedDict([("z", 1), ("a", n)]))
    assert type(od) is OrderedDict and list(od.items()) == [("z", 1), ("a", 5)]
    pair = resolve(Pair(n, [n]))
    assert type(pair) is Pair and pair == Pair(5, [5])
    frozen = resolve(FrozenBox(n))
    assert type(frozen) is FrozenBox and frozen.item == 5
    assert resolve({n, 1}) == {5, 1}
    assert resolve(frozenset([n])) == frozenset([5])


def test_resolve_returns_containers_without_nodes_unchanged():
    value = {"a": [1, (2, 3)], "b": Box([4])}
    assert resolve(value) is value
    mixed = [[1], tg.node(2)]
    out = resolve(mixed)
    assert out == [[1], 2] and out[0] is mixed[0]


def test_resolve_with_a_lookup():
    n = tg.node(1)
    assert resolve({"x": [n]}, lambda node: "found") == {"x": ["found"]}


def test_iter_nodes_looks_into_the_same_containers():
    a, b, c, d = (tg.node(i) for i in range(4))
    value = (OrderedDict(a=a), Pair(b, 0), Box(c), {d}, "text", 7)
    assert ids(iter_nodes(value)) == ids([a, b, c, d])


def test_self_referencing_containers_do_not_recurse_forever():
    n = tg.node(1)
    loop: list = [n]
    loop.append(loop)
    assert ids(find(loop, tg.Node)) == [id(n)]
    out = replace(loop, tg.Node, lambda node: node.value)
    assert out[0] == 1
    d: dict = {"n": n}
    d["self"] = d
    assert ids(iter_nodes(d)) == [id(n)]
    assert resolve(d)["n"] == 1
    out = tg.apply(lambda x: x[0], loop)
    assert out.data == 1 and ids(out.parents) == [id(n)]


def test_children_of_each_container_kind():
    assert children([5, 6]) == ((0, 5), (1, 6))
    assert children(Pair(1, 2)) == ((0, 1), (1, 2))
    assert children({"a": 1}) == (("a", 1),)
    assert children(OrderedDict(b=2)) == (("b", 2),)
    assert children(Box(1)) == (("item", 1), ("label", "box"))
    assert children({9}) == ((0, 9),)


@pytest.mark.parametrize("leaf", ["text", b"bytes", 3, 2.5, None, tg.node([1]), Box, object()])
def test_leaves_have_no_children(leaf):
    assert children(leaf) == ()
    assert not is_container(leaf)


def test_empty_containers_are_containers():
    assert is_container([]) and is_container({}) and children([]) == ()
