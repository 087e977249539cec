"""What a user of the reference library relies on: in-place changes to arguments,
unpacking, copies, children and iteration behave as on plain Python values."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import pickle
import weakref

import numpy as np
import pytest

import tracegrad as tg
from tracegrad.trace import acall_on_values, call_on_values, keeping_children, weak_children

# -- in-place changes to arguments ---------------------------------------------------------


def test_a_plain_list_argument_reaches_the_function_as_the_same_object():
    memory = ["system: be brief"]
    seen = []

    @tg.bundle()
    def remember(history, message):
        seen.append(history)
        history.append(message)
        return len(history)

    out = remember(memory, tg.node("user: hi"))
    assert seen[0] is memory
    assert memory == ["system: be brief", "user: hi"]
    assert out.data == 2


def test_an_agent_memory_list_appended_in_apply_is_the_callers_list():
    memory: list[str] = []
    question = tg.node("what is 2 + 2?")
    tg.apply(lambda history, q: history.append(q), memory, question, name="remember")
    assert memory == ["what is 2 + 2?"]


def test_an_environment_dict_updated_in_a_bundled_function_is_the_callers_dict():
    env = {"position": 0, "log": []}

    @tg.bundle()
    def step(state, move):
        state["position"] += move
        state["log"].append(move)
        return state["position"]

    step(env, tg.node(2))
    step(env, tg.node(3))
    assert env == {"position": 5, "log": [2, 3]}


def test_a_list_holding_nodes_gets_the_appends_made_to_its_copy():
    prompt = tg.parameter("You are a helpful agent.")
    memory = [prompt, "user: hi"]
    tg.apply(lambda history: history.append("assistant: hello"), memory)
    assert memory[0] is prompt
    assert memory[1:] == ["user: hi", "assistant: hello"]


def test_items_inserted_or_removed_around_nodes_keep_the_nodes():
    a, b = tg.node("a"), tg.node("b")
    items = [a, "x", b]
    tg.apply(lambda xs: (xs.insert(0, "first"), xs.remove("x")), items)
    assert items[0] == "first" and items[1] is a and items[2] is b and len(items) == 3
    tg.apply(lambda xs: xs.reverse(), items)
    assert items[0] is b and items[1] is a and items[2] == "first"


def test_a_node_item_the_function_replaced_is_replaced_in_the_original():
    n = tg.node(1)
    items = [n, 2]
    tg.apply(lambda xs: xs.__setitem__(0, 10), items)
    assert items == [10, 2]


def test_a_dict_holding_nodes_gets_the_updates_made_to_its_copy():
    goal = tg.node("reach the exit")
    env = {"goal": goal, "steps": 0}

    def step(state):
        state["steps"] += 1
        state["seen"] = [state["goal"]]
        del state["goal"]

    tg.apply(step, env)
    assert env == {"steps": 1, "seen": ["reach the exit"]}
    env2 = {"goal": goal, "steps": 0}
    tg.apply(lambda state: state.update(steps=1), env2)
    assert env2["goal"] is goal and env2["steps"] == 1


def test_changes_to_a_nested_rebuilt_list_reach_the_inner_original():
    n = tg.node("n")
    inner = [n]
    outer = [inner, "tail"]
    tg.apply(lambda xs: (xs[0].append("more"), xs.append("end")), outer)
    assert outer[0] is inner and outer[1:] == ["tail", "end"]
    assert inner[0] is n and inner[1] == "more"


@dataclasses.dataclass
class Agent:
    prompt: object
    turns: int = 0


def test_a_dataclass_and_a_set_holding_nodes_get_their_changes():
    prompt = tg.node("p")
    agent = Agent(prompt)
    tg.apply(lambda a: setattr(a, "turns", a.turns + 1), agent)
    assert agent.turns == 1 and agent.prompt is prompt
    tags = {prompt, "a"}
    tg.apply(lambda s: (s.add("b"), s.discard("a")), tags)
    assert tags == {prompt, "b"}


def test_in_place_changes_are_written_back_when_the_function_raises():
    n = tg.node(1)
    memory = [n]

    def fail(history):
        history.append("partial")
        raise RuntimeError("boom")

    with pytest.raises(tg.ExecutionError):
        tg.apply(fail, memory)
    assert memory[0] is n and memory[1] == "partial"


def test_a_rebuilt_container_left_unchanged_keeps_its_items():
    n = tg.node(1)
    items = [n, 2]
    before = list(items)
    out = tg.apply(lambda xs: sum(xs), items)
    assert out.data == 3
    assert all(a is b for a, b in zip(items, before, strict=True))


def test_calling_a_node_holding_a_function_writes_changes_back():
    n = tg.node("x")
    memory = [n]
    fn = tg.node(lambda history: history.append("y"))
    fn(memory)
    assert memory[0] is n and memory[1] == "y"


def test_call_on_values_and_its_async_form_write_changes_back():
    n = tg.node(1)
    memory = [n]
    assert call_on_values(lambda xs, k=0: xs.append(k) or len(xs), (memory,), {"k": 5}) == 2
    assert memory[0] is n and memory[1] == 5

    async def grow(xs):
        await asyncio.sleep(0)
        xs.append("later")
        return xs[0]

    assert asyncio.run(acall_on_values(grow, (memory,))) == 1
    assert memory[0] is n and memory[2] == "later"


# -- unpacking -------------------------------------------------------------------------------


def test_unpacking_a_traced_none_raises_an_execution_error_with_an_error_node():
    p = tg.parameter("prompt")

    @tg.bundle()
    def parse(text):
        return None

    result = parse(p)
    with pytest.raises(tg.ExecutionError) as info:
        _a, _b = result
    error = info.value
    assert isinstance(error.node, tg.ErrorNode)
    assert isinstance(error.exception, TypeError)
    assert error.node.parents == (result,)
    error.node.backward(str(error))
    assert p.has_feedback


def test_iterating_a_number_or_a_zero_dimensional_array_raises_an_execution_error():
    for value in (5, np.float32(1.0), np.array(3.0)):
        with pytest.raises(tg.ExecutionError):
            list(tg.node(value))


# -- iteration -------------------------------------------------------------------------------


def test_iterating_a_node_holding_a_numpy_array_yields_traced_rows():
    x = tg.node(np.arange(6).reshape(3, 2))
    rows = list(x)
    assert len(rows) == 3
    for i, row in enumerate(rows):
        assert isinstance(row, tg.OperationNode) and row.parents == (x,)
        np.testing.assert_array_equal(row.data, np.arange(6).reshape(3, 2)[i])
    first, second = tg.node(np.array([1.5, 2.5]))
    assert (first.data, second.data) == (1.5, 2.5)


def test_iterating_a_node_holding_a_set_yields_traced_items():
    s = tg.node({3})
    (item,) = s
    assert item.data == 3 and s in tg.trace.ancestors([item])


# -- copies ---------------------------------------------------------------------------------


def test_a_deep_copy_of_a_node_is_detached_with_a_new_identity_and_serial():
    p = tg.parameter(1.0, name="p")
    z = p + 1.0
    for _ in range(50):
        z = z + 1.0
    z.backward("higher")
    twin = copy.deepcopy(z)
    assert twin is not z and type(twin) is tg.Node
    assert twin.parents == () and not twin.has_feedback
    assert twin.serial > z.serial and twin.name != z.name
    assert twin.data == z.data
    assert p.feedback and z.has_feedback  # the original is untouched


def test_a_deep_copy_of_a_parameter_stays_a_parameter_of_its_kind():
    kind = tg.Number(0, 10)
    p = tg.parameter(3.0, kind, name="temperature", description="sampling temperature")
    twin = copy.deepcopy(p)
    assert isinstance(twin, tg.ParameterNode) and twin.kind is kind
    assert twin.given_name == "temperature" and twin.description == "sampling temperature"
    twin.data = 5.0
    assert p.data == 3.0
    with pytest.raises(tg.InvalidValueError):
        twin.data = 11.0


def test_a_deep_copy_keeps_a_given_name_but_not_an_automatic_one():
    unnamed = tg.parameter("t")
    assert copy.deepcopy(unnamed).given_name is None
    assert copy.deepcopy(unnamed).name != unnamed.name
    assert copy.deepcopy(tg.node(1, name="count")).name == "count"


def test_a_deep_copy_holds_a_deep_copy_of_the_value_and_a_shallow_copy_the_same_value():
    n = tg.node({"items": [1, 2]}, name="state")
    deep, shallow = copy.deepcopy(n), copy.copy(n)
    assert deep.data == n.data and deep.data["items"] is not n.data["items"]
    assert shallow.data is n.data
    assert shallow.parents == () and shallow.serial > n.serial and shallow is not n


def test_nodes_deep_copied_together_share_their_copies():
    a = tg.parameter("a", name="a")
    pair = copy.deepcopy({"first": a, "again": [a]})
    assert pair["first"] is pair["again"][0] and pair["first"] is not a


def test_a_clone_is_a_traced_copy_whose_feedback_reaches_the_node():
    p = tg.parameter({"k": [1]}, name="p")
    c = p.clone()
    assert isinstance(c, tg.OperationNode) and c.parents == (p,)
    assert c.data == p.data and c.data["k"] is not p.data["k"]
    c.backward("wrong")
    assert [(f.output, f.value) for f in p.feedback] == [(c, "wrong")]


# -- children --------------------------------------------------------------------------------


def test_children_are_kept_inside_keeping_children_only():
    x = tg.node(2)
    outside = x + 1
    assert x.children == ()
    with keeping_children():
        inside = x * 3
        other = tg.node(1) - x
    assert x.children == (inside, other)
    assert outside not in x.children


def test_children_are_held_weakly():
    x = tg.node(2)
    with keeping_children():
        y = x + 1
        kept = x + 2
    del y
    gc.collect()
    assert x.children == (kept,)


def test_an_error_node_is_a_child_of_its_inputs():
    x = tg.node({})
    with keeping_children(), pytest.raises(tg.ExecutionError) as info:
        x["missing"]
    assert x.children == (info.value.node,)


def test_the_children_list_of_a_long_lived_node_does_not_grow():
    class Child:
        pass

    kids = weak_children.new()
    survivors = []
    for i in range(10_000):
        child = Child()
        if i % 1000 == 0:
            survivors.append(child)
        weak_children.add(kids, weakref.ref(child))
        del child
    assert weak_children.alive(kids) == tuple(survivors)
    assert len(kids) <= 2 * weak_children.LIMIT + 1


def test_a_node_with_children_pickles_without_them():
    x = tg.node(2, name="x")
    with keeping_children():
        y = x + 1
    back = pickle.loads(pickle.dumps(x))
    assert back.data == 2 and back.children == ()
    assert x.children == (y,)
