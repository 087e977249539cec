"""Moving traces between processes: pickling, shared payload objects, relinking."""

from __future__ import annotations

import sys
import threading
import types
from dataclasses import dataclass

import pytest

import tracegrad as tg
from tracegrad.trace import ancestors, transfer
from tracegrad.trace.operators import OPERATORS


@pytest.fixture(autouse=True)
def _need_cloudpickle():
    try:
        transfer.cloudpickle()
    except ImportError:
        pytest.skip("cloudpickle is not installed")


class Refused(Exception):
    """An exception whose __init__ does not take its message (plain pickle rebuilds fail)."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"{code}: {why}")
        self.code = code


@tg.bundle
def greet(prompt, name):
    """Greet someone with the prompt."""
    return f"{prompt} {name}"


@tg.bundle
def pick(options, weights):
    """Pick the option of the largest weight."""
    return max(zip(weights, options, strict=True))[1]


@tg.bundle
def refuse(text):
    """Refuse every text."""
    raise Refused(7, f"no {text}")


@dataclass
class Pair:
    left: object
    right: object


def workflow(prompt, count):
    """A graph with bundles, operators, containers in arguments and an error node."""
    hello = greet(prompt, tg.node("Ada", name="who"))
    shout = (hello + "!").upper()
    best = pick([shout, hello], [count, 1])
    total = count * 2 + 1
    try:
        refuse(best)
    except tg.ExecutionError as err:
        failed = err
    return {"best": best, "total": total, "pair": Pair(shout, total), "error": failed}


def topological(nodes):
    return all(p.serial < n.serial for n in nodes for p in n.parents)


def repr_value(node):
    return f"{type(node).__name__}:{node.value!r}"


def params():
    return tg.node("Hello", trainable=True, name="prompt"), tg.node(3, trainable=True, name="count")


def test_a_graph_round_trips_and_relinks_to_the_original_parameters():
    prompt, count = params()
    result = workflow(prompt, count)
    copy = transfer.loads(transfer.dumps(result))
    assert copy["best"] is not result["best"]
    relinked = transfer.relink(copy, {"prompt": prompt, "count": count})

    best, error = relinked["best"], relinked["error"]
    assert best.data == result["best"].data == "HELLO ADA!"
    assert relinked["total"].data == 7
    assert relinked["pair"].left.data == "HELLO ADA!"
    assert isinstance(error, tg.ExecutionError)
    assert isinstance(error.exception, Refused) and error.exception.code == 7
    assert "Refused" in error.node.traceback

    graph = list(ancestors([best, relinked["total"], error.node]))
    before = list(ancestors([result["best"], result["total"], result["error"].node]))
    assert sorted(map(repr_value, graph)) == sorted(map(repr_value, before))
    assert {p for p in graph if isinstance(p, tg.ParameterNode)} == {prompt, count}
    assert topological(graph)

    error.node.backward("refused")
    relinked["total"].backward("too big")
    assert [f.value for f in prompt.feedback] == ["refused"]
    assert [f.value for f in count.feedback] == ["refused", "too big"]


def test_received_nodes_get_fresh_serials_in_their_original_order():
    prompt, count = params()
    result = workflow(prompt, count)
    original = sorted(ancestors([result["best"], result["total"]]), key=lambda n: n.serial)
    newest = max(n.serial for n in original)
    relinked = transfer.relink(transfer.loads(transfer.dumps(result)), {"prompt": prompt, "count": count})
    received = sorted(ancestors([relinked["best"], relinked["total"]]), key=lambda n: n.serial)

    assert [n.value for n in received] == [n.value for n in original]
    for before, after in zip(original, received, strict=True):
        if isinstance(before, tg.ParameterNode):
            assert after is before
        else:
            assert after.serial > newest
    assert len({n.serial for n in received}) == len(received)


def test_arguments_and_containers_in_arguments_point_at_the_driver_parameters():
    prompt, count = params()
    listed = greet(prompt, [count, {"n": count}])
    copy = transfer.relink(transfer.loads(transfer.dumps(listed)), {"prompt": prompt, "count": count})
    first, nested = copy.args[1]
    assert copy.args[0] is prompt and first is count and nested["n"] is count
    assert copy.parents == (prompt, count)


def test_the_engine_operators_come_back_as_this_process_operators():
    prompt, _ = params()
    out = (prompt + "!").upper()
    copy = transfer.relink(transfer.loads(transfer.dumps(out)), {"prompt": prompt})
    assert copy.parents[0].operator is OPERATORS["add"]
    assert copy.operator is out.operator


def test_unmatched_parameters_stay_received_copies_with_fresh_serials():
    prompt, _ = params()
    out = greet(prompt, "Ada")
    copy = transfer.relink(transfer.loads(transfer.dumps(out)), {})
    (received,) = copy.parents
    assert received is not prompt and received.name == "prompt" and received.value == "Hello"
    assert received.serial > prompt.serial


def test_two_copies_of_one_parameter_become_one_parent():
    prompt, _ = params()
    twin = tg.node("Hello", trainable=True, name="prompt")
    out = greet(prompt, twin)
    copy = transfer.relink(transfer.loads(transfer.dumps(out)), {"prompt": prompt})
    assert copy.parents == (prompt,)
    assert copy.args == (prompt, prompt)


def test_a_long_chain_is_written_flat_rather_than_recursively():
    p = tg.node(0, trainable=True, name="p")
    z = p
    for _ in range(5000):
        z = z + 1
    copy = transfer.relink(transfer.loads(transfer.dumps(z)), {"p": p})
    assert copy.data == 5000
    assert topological(list(ancestors([copy])))
    copy.backward("smaller")
    assert [f.value for f in p.feedback] == ["smaller"]


def test_feedback_travels_with_a_graph_but_not_with_a_payload():
    prompt, _ = params()
    out = greet(prompt, "Ada") + "!"
    out.backward("shorter")
    copy = transfer.loads(transfer.dumps([prompt, out]))
    copied_prompt, copied_out = copy
    assert [(f.output, f.value) for f in copied_prompt.feedback] == [(copied_out, "shorter")]
    assert [f.value for f in copied_out.feedback] == ["shorter"]

    received = transfer.receive(transfer.send(lambda: (prompt, out)).data).value()
    assert [n.feedback for n in received] == [[], []]
    assert prompt.feedback and out.feedback  # the sender's own are kept


def test_open_recordings_record_the_received_operations_in_order():
    prompt, _ = params()
    out = (greet(prompt, "Ada") + "!").upper()
    data = transfer.dumps(out)
    with tg.recording() as rec:
        copy = transfer.relink(transfer.loads(data), {"prompt": prompt})
    assert [n.value for n in rec.nodes] == ["Hello Ada", "Hello Ada!", "HELLO ADA!"]
    assert rec.nodes[-1] is copy


def test_locks_travel_as_new_unlocked_locks():
    holder = {"lock": threading.Lock(), "rlock": threading.RLock()}
    with holder["lock"]:
        copy = transfer.loads(transfer.dumps(holder))
    assert copy["lock"].acquire(blocking=False)
    assert copy["rlock"].acquire(blocking=False)


def test_exceptions_are_rebuilt_without_their_init():
    error = Refused(3, "nope")
    error.note = "kept"
    copy = transfer.loads(transfer.dumps(error))
    assert type(copy) is Refused and copy.args == ("3: nope",)
    assert copy.code == 3 and copy.note == "kept"
    assert type(transfer.loads(transfer.dumps(KeyError("k")))) is KeyError


def test_modules_named_by_value_travel_by_value_and_the_registry_is_restored():
    module = types.ModuleType("tg_transfer_scratch")
    exec("def triple(x):\n    return 3 * x\n", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        data = transfer.dumps(module.triple, by_value=[module])
        assert module.__name__ not in transfer.cloudpickle().list_registry_pickle_by_value()
    finally:
        del sys.modules[module.__name__]
    assert transfer.loads(data)(2) == 6  # the module cannot be imported: it came by value


def test_a_reply_refers_to_the_objects_of_the_payload():
    prompt, count = params()

    def task(name):
        made_there = tg.node("x", trainable=True, name="made_there")
        return {"out": greet(prompt, name), "total": count * 2, "stray": made_there}

    sent = transfer.send(task)
    received = transfer.receive(sent.data)  # what a worker does
    assert received.value is not task
    reply = received.reply(received.value("Ada"))
    newest = tg.node(None).serial
    back = sent.open_reply(reply)

    out, total = back["out"], back["total"]
    assert (out.data, total.data) == ("Hello Ada", 6)
    assert out.parents[0] is prompt and total.parents[0] is count
    assert out.operator is greet._operator  # the driver's bundled function, not a copy
    assert back["stray"] is not None and sent.strays == {"made_there"}
    assert topological(list(ancestors([out, total])))
    assert min(out.serial, total.serial, back["stray"].serial) > newest  # renumbered on arrival
    out.backward("longer")
    total.backward("smaller")
    assert [f.value for f in prompt.feedback] == ["longer"]
    assert [f.value for f in count.feedback] == ["smaller"]


def test_a_reply_finds_nodes_inside_any_object_and_matches_named_parameters():
    prompt, _ = params()

    class Box:
        def __init__(self, node):
            self.node = node

    def task(_):
        there = tg.node("Hi", trainable=True, name="prompt")  # a worker's own copy
        return Box(greet(there, "Bo"))

    sent = transfer.send(task)
    received = transfer.receive(sent.data)
    back = sent.open_reply(received.reply(received.value(None)), {"prompt": prompt})
    assert back.node.parents == (prompt,)
    assert back.node.serial > prompt.serial
    assert sent.strays == set()
