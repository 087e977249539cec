"""@tg.bundle: functions (sync, async, methods) recorded as one operation; errors, reads, nesting."""

from __future__ import annotations

import asyncio

import pytest

import tracegrad as tg


def ids(nodes):
    return [id(n) for n in nodes]


def values(node):
    return [f.value for f in node.feedback]


# -- recording one operation -------------------------------------------------------------------


def test_bundle_records_one_operation_with_named_inputs():
    @tg.bundle()
    def summarize(text, limit, style="short"):
        """Summarize a text."""
        words = text.split()
        return " ".join(words[:limit]) + f" ({style})"

    text = tg.node("a b c d", name="text")
    limit = tg.node(2, trainable=True, name="limit")
    with tg.recording() as rec:
        out = summarize(text, limit, style="long")
    assert [id(n) for n in rec] == [id(out)]
    assert isinstance(out, tg.OperationNode)
    assert out.data == "a b (long)"
    assert out.inputs["text"] is text
    assert out.inputs["limit"] is limit
    assert out.inputs["style"] == "long"
    assert ids(out.parents) == ids([text, limit])
    assert out.description == "Summarize a text."
    assert out.operator.name == "summarize"
    assert summarize.name == "summarize"
    assert summarize.__doc__ == "Summarize a text."


def test_bundle_with_keyword_arguments_names_them():
    @tg.bundle()
    def f(a, *, b):
        return a + b

    x, y = tg.node(1), tg.node(2)
    out = f(x, b=y)
    assert out.inputs["a"] is x
    assert out.inputs["b"] is y


def test_bundle_with_plain_values_and_nodes_in_containers():
    @tg.bundle()
    def total(xs):
        return sum(xs)

    a, b = tg.node(1), tg.node(2)
    out = total([a, b, 3])
    assert out.data == 6
    assert set(ids(out.parents)) == set(ids([a, b]))


def test_bundle_without_parentheses_and_with_overrides():
    @tg.bundle
    def plain(x):
        """Doc."""
        return x

    @tg.bundle(name="renamed", description="custom description")
    def other(x):
        """Ignored doc."""
        return x

    assert plain(1).description == "Doc."
    out = other(1)
    assert out.operator.name == "renamed"
    assert out.description == "custom description"
    assert out.name.startswith("renamed")


def test_bundle_checks_arguments_before_running():
    calls = []

    @tg.bundle()
    def f(a):
        calls.append(a)
        return a

    with pytest.raises(TypeError):
        f(1, 2)
    with pytest.raises(TypeError):
        f(b=1)
    assert calls == []


def test_bundle_cannot_wrap_a_bundle():
    @tg.bundle()
    def f(x):
        return x

    with pytest.raises(TypeError):
        tg.bundle(f)


def test_bundle_receives_plain_values():
    seen = []

    @tg.bundle()
    def f(x, xs):
        seen.append((type(x), [type(v) for v in xs]))
        return x

    f(tg.node("s"), [tg.node(1), 2])
    assert seen == [(str, [int, int])]


def test_bundle_returning_a_node_unwraps_it():
    inner = tg.node(5, trainable=True)

    @tg.bundle()
    def f(x):
        return inner

    out = f(1)
    assert out.data == 5
    assert not isinstance(out.data, tg.Node)
    assert id(inner) in ids(out.parents)


async def test_async_bundle_records_one_operation():
    @tg.bundle()
    async def fetch(query, delay=0):
        """Fetch something."""
        await asyncio.sleep(delay)
        return query.upper()

    q = tg.node("abc", trainable=True)
    with tg.recording() as rec:
        out = await fetch(q)
    assert fetch.is_async
    assert [id(n) for n in rec] == [id(out)]
    assert out.data == "ABC"
    assert out.inputs["query"] is q
    assert out.description == "Fetch something."
    out.backward("fb")
    assert values(q) == ["fb"]


async def test_async_bundle_exception_becomes_error_node():
    @tg.bundle()
    async def boom(x):
        await asyncio.sleep(0)
        raise RuntimeError(f"bad {x}")

    p = tg.node("p", trainable=True)
    with pytest.raises(tg.ExecutionError) as info:
        await boom(p)
    assert isinstance(info.value.node.exception, RuntimeError)
    assert ids(info.value.node.parents) == ids([p])


def test_bundled_method():
    class Greeter:
        def __init__(self, greeting):
            self.greeting = greeting

        @tg.bundle()
        def greet(self, name):
            """Greet someone."""
            return f"{self.greeting}, {name}"

    g = Greeter("Hi")
    who = tg.node("Ann", trainable=True)
    out = g.greet(who)
    assert out.data == "Hi, Ann"
    assert out.inputs["self"] is g
    assert out.inputs["name"] is who
    assert ids(out.parents) == ids([who])
    assert out.description == "Greet someone."


async def test_bundled_async_method():
    class Agent:
        @tg.bundle()
        async def act(self, obs):
            await asyncio.sleep(0)
            return obs * 2

    out = await Agent().act(tg.node(3))
    assert out.data == 6


# -- exceptions ----------------------------------------------------------------------------------


def test_exception_becomes_error_node_with_traceback():
    @tg.bundle()
    def divide(a, b):
        return a / b

    p = tg.node(1, trainable=True, name="p")
    q = tg.node(0, trainable=True, name="q")
    other = tg.node(7, trainable=True)
    with tg.recording() as rec, pytest.raises(tg.ExecutionError) as info:
        divide(p, q)
    err = info.value
    node = err.node
    assert [id(n) for n in rec] == [id(node)]
    assert isinstance(node, tg.ErrorNode)
    assert isinstance(node.exception, ZeroDivisionError)
    assert err.exception is node.exception
    assert "ZeroDivisionError" in node.traceback
    assert "return a / b" in node.traceback  # the line that failed
    assert node.inputs["a"] is p and node.inputs["b"] is q
    node.backward(str(err))
    assert values(p) == [str(err)]
    assert values(q) == [str(err)]
    assert values(other) == []


def test_base_exceptions_are_not_turned_into_error_nodes():
    @tg.bundle()
    def interrupted(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted(1)


# -- reads of nodes not passed as arguments ---------------------------------------------------------


def test_reading_a_trainable_node_inside_a_bundle_records_it_as_an_input():
    prompt = tg.node("Be brief.", trainable=True, name="prompt")

    @tg.bundle()
    def ask(question):
        return prompt.data + " " + question

    q = tg.node("Why?")
    out = ask(q)
    assert out.data == "Be brief. Why?"
    assert set(ids(out.parents)) == set(ids([q, prompt]))
    assert prompt in out.inputs.values()
    out.backward("too brief")
    assert values(prompt) == ["too brief"]


def test_reading_an_argument_does_not_duplicate_it():
    p = tg.node("x", trainable=True)

    @tg.bundle()
    def f(a):
        return p.data + a

    out = f(p)
    assert ids(out.parents) == ids([p])


def test_read_in_a_method_of_an_attribute_parameter():
    class Agent(tg.Module):
        def __init__(self):
            self.prompt = tg.node("sys", trainable=True)

        @tg.bundle()
        def run(self, x):
            return self.prompt.data + x

    agent = Agent()
    out = agent.run("!")
    out.backward("fb")
    assert values(agent.prompt) == ["fb"]


def test_read_inside_a_failing_bundle_reaches_the_parameter():
    p = tg.node(0, trainable=True)

    @tg.bundle()
    def f(x):
        return x / p.data

    with pytest.raises(tg.ExecutionError) as info:
        f(1)
    assert id(p) in ids(info.value.node.parents)


def test_reading_data_outside_a_bundle_records_nothing():
    p = tg.node(1, trainable=True)
    _ = p.data

    @tg.bundle()
    def f(x):
        return x

    assert f(2).parents == ()


# -- nested bundles -------------------------------------------------------------------------------


def test_nested_bundles_run_plainly():
    @tg.bundle()
    def inner(x):
        return x * 2

    seen = []

    @tg.bundle()
    def outer(x):
        y = inner(x)
        seen.append(type(y))
        return y + 1

    p = tg.node(3, trainable=True)
    with tg.recording() as rec:
        out = outer(p)
    assert [id(n) for n in rec] == [id(out)]
    assert seen == [int]
    assert out.data == 7
    assert ids(out.parents) == ids([p])


async def test_nested_async_bundles_run_plainly():
    @tg.bundle()
    async def inner(x):
        await asyncio.sleep(0)
        return x + 1

    @tg.bundle()
    async def outer(x):
        return await inner(x) * 10

    with tg.recording() as rec:
        out = await outer(tg.node(1))
    assert [id(n) for n in rec] == [id(out)]
    assert out.data == 20


def test_exception_in_a_nested_bundle_is_one_error_node_of_the_outer():
    @tg.bundle()
    def inner(x):
        raise ValueError("inner failed")

    @tg.bundle()
    def outer(x):
        return inner(x)

    p = tg.node(1, trainable=True)
    with tg.recording() as rec, pytest.raises(tg.ExecutionError) as info:
        outer(p)
    assert [id(n) for n in rec] == [id(info.value.node)]
    assert isinstance(info.value.node.exception, ValueError)
    assert info.value.node.operator.name == "outer"


def test_node_passed_to_a_nested_bundle_is_recorded_as_an_input_of_the_outer():
    p = tg.node("x", trainable=True)

    @tg.bundle()
    def inner(a):
        return a + "!"

    @tg.bundle()
    def outer(b):
        return inner(p) + b

    out = outer("y")
    assert out.data == "x!y"
    out.backward("fb")
    assert values(p) == ["fb"]


def test_operations_on_captured_nodes_inside_a_bundle_are_reads_not_operations():
    prompt = tg.node("Hello", trainable=True, name="prompt")

    @tg.bundle()
    def greet(name):
        return (prompt + ", " + name).data  # operators on a node the bundle was not given

    with tg.recording() as rec:
        out = greet("Ada")
    assert out.data == "Hello, Ada"
    assert rec.nodes == [out]  # nothing inside the bundle was recorded
    assert prompt in out.parents
    out.backward("be warmer")
    assert [f.value for f in prompt.feedback] == ["be warmer"]


def test_calling_a_trainable_method_through_the_class_uses_the_objects_code():
    class Agent(tg.Module):
        @tg.bundle(trainable=True)
        def act(self, x):
            return x + 1

    agent = Agent()
    agent.act.parameter.data = "def act(self, x):\n    return x + 100\n"
    assert Agent.act(agent, 1).data == 101
    assert agent.act.parameter in Agent.act(agent, 1).parents


def test_a_bundle_is_shared_by_copies_of_what_holds_it():
    import copy

    holder = {"tool": _copyable}
    assert copy.deepcopy(holder)["tool"] is _copyable and copy.copy(_copyable) is _copyable
    assert copy.deepcopy(holder)["tool"].parameter is _copyable.parameter


@tg.bundle(trainable=True)
def _copyable(x):
    """Add one."""
    return x + 1


def test_a_list_holding_nodes_gets_the_appends_made_inside_a_bundled_function():
    import asyncio

    prompt = tg.node("be brief", trainable=True, name="prompt")

    @tg.bundle
    def remember(memory, item):
        """Append an item to the agent's memory."""
        memory.append(item)
        return len(memory)

    @tg.bundle
    async def aremember(memory, item):
        """Append an item to the agent's memory, asynchronously."""
        memory.append(item)
        return len(memory)

    memory = [prompt, "hi"]
    assert remember(memory, "there").data == 3
    assert asyncio.run(aremember(memory, "again")).data == 4
    assert memory[0] is prompt and memory[1:] == ["hi", "there", "again"]


def test_a_bundle_lists_its_parameters_like_the_reference_libraries_fun_module():
    @tg.bundle
    def plain(x):
        return x

    assert _copyable.parameters() == [_copyable.parameter] and plain.parameters() == []
