"""The recording context: no_trace, tracing, recording; threads, asyncio tasks, memory."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest

import tracegrad as tg
from tracegrad.trace import ancestors


def test_tracing_is_on_by_default():
    assert tg.is_tracing()
    a = tg.node(1)
    assert (a + 1).parents == (a,)


def test_no_trace_returns_parentless_nodes():
    a = tg.node(1)
    with tg.no_trace():
        assert not tg.is_tracing()
        out = a + 1
        assert out.data == 2
        assert out.parents == ()
        assert not isinstance(out, tg.OperationNode)
        assert tg.node("abc").len().parents == ()
        assert tg.apply(str, a).parents == ()
    assert tg.is_tracing()


def test_no_trace_is_reentrant():
    a = tg.node(1)
    with tg.no_trace():
        with tg.no_trace():
            assert (a + 1).parents == ()
        assert not tg.is_tracing()
        assert (a + 1).parents == ()
    assert tg.is_tracing()
    assert (a + 1).parents == (a,)


def test_tracing_inside_no_trace():
    a = tg.node(1)
    with tg.no_trace():
        with tg.tracing(True):
            assert tg.is_tracing()
            assert (a + 1).parents == (a,)
        assert not tg.is_tracing()
        assert (a + 1).parents == ()


def test_no_trace_state_is_restored_after_an_exception():
    with pytest.raises(RuntimeError), tg.no_trace():
        raise RuntimeError("boom")
    assert tg.is_tracing()


def test_bundle_under_no_trace_returns_a_parentless_node():
    @tg.bundle()
    def inc(x):
        return x + 1

    a = tg.node(1, trainable=True)
    with tg.no_trace():
        out = inc(a)
    assert out.data == 2
    assert out.parents == ()


def test_error_under_no_trace_has_no_parents():
    a = tg.node("x")
    with tg.no_trace(), pytest.raises(tg.ExecutionError) as info:
        a + 1
    assert info.value.node.parents == ()


# -- recording ----------------------------------------------------------------------------


def test_recording_collects_the_nodes_made_inside_in_order():
    a = tg.node(1)
    before = a + 1
    with tg.recording() as rec:
        b = a + 2
        c = b * 3
    after = c - 1
    assert [id(n) for n in rec] == [id(b), id(c)]
    assert len(rec) == 2
    assert all(n is not before and n is not after for n in rec.nodes)


def test_nested_recordings_both_see_inner_nodes():
    a = tg.node(1)
    with tg.recording() as outer:
        x = a + 1
        with tg.recording() as inner:
            y = a + 2
        z = a + 3
    assert [id(n) for n in inner] == [id(y)]
    assert [id(n) for n in outer] == [id(x), id(y), id(z)]


def test_recording_sees_bundles_and_errors():
    @tg.bundle()
    def f(x):
        return x

    a = tg.node(1)
    with tg.recording() as rec:
        r = f(a)
        with pytest.raises(tg.ExecutionError) as info:
            a + "s"
    assert [id(n) for n in rec] == [id(r), id(info.value.node)]


def test_recording_under_no_trace_collects_nothing():
    a = tg.node(1)
    with tg.recording() as rec, tg.no_trace():
        a + 1
    assert len(rec) == 0


# -- threads ----------------------------------------------------------------------------------


def test_one_thread_in_no_trace_while_another_traces():
    barrier = threading.Barrier(2, timeout=10)
    results: dict[str, object] = {}
    a = tg.node(1)

    def quiet():
        with tg.no_trace():
            barrier.wait()  # the other thread is now tracing
            outs = [a + i for i in range(200)]
            barrier.wait()
            results["quiet"] = [o.parents for o in outs]
            results["quiet_tracing"] = tg.is_tracing()

    def loud():
        barrier.wait()  # the other thread is inside no_trace
        outs = [a + i for i in range(200)]
        barrier.wait()
        results["loud"] = [o.parents for o in outs]
        results["loud_tracing"] = tg.is_tracing()

    threads = [threading.Thread(target=quiet), threading.Thread(target=loud)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p == () for p in results["quiet"])
    assert all(p == (a,) for p in results["loud"])
    assert results["quiet_tracing"] is False
    assert results["loud_tracing"] is True
    assert tg.is_tracing()


def test_recordings_in_threads_are_separate():
    barrier = threading.Barrier(4, timeout=10)

    def work(k):
        leaf = tg.node(k)
        with tg.recording() as rec:
            barrier.wait()
            out = leaf
            for _ in range(100):
                out = out + 1
        return leaf, out, rec

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for k, (leaf, out, rec) in enumerate(results):
        assert out.data == k + 100
        assert len(rec) == 100
        owned = {id(n) for n in rec} | {id(leaf)}
        assert {id(n) for n in ancestors([out])} == owned


def test_a_recording_in_the_main_thread_does_not_see_other_threads():
    with tg.recording() as rec:
        t = threading.Thread(target=lambda: tg.node(1) + 1)
        t.start()
        t.join()
    assert len(rec) == 0


# -- asyncio ------------------------------------------------------------------------------------


async def test_async_tasks_build_graphs_concurrently_without_mixing():
    async def build(k):
        leaf = tg.node(k, name=f"leaf{k}")
        with tg.recording() as rec:
            out = leaf
            for _ in range(20):
                await asyncio.sleep(0)
                out = out + 1
        return leaf, out, rec

    results = await asyncio.gather(*(build(k) for k in range(8)))
    for k, (leaf, out, rec) in enumerate(results):
        assert out.data == k + 20
        assert len(rec) == 20
        assert {id(n) for n in ancestors([out])} == {id(n) for n in rec} | {id(leaf)}


async def test_async_task_in_no_trace_does_not_affect_another():
    a = tg.node(1)
    seen: dict[str, list] = {"quiet": [], "loud": []}

    async def quiet():
        with tg.no_trace():
            for i in range(20):
                await asyncio.sleep(0)
                seen["quiet"].append((a + i).parents)

    async def loud():
        for i in range(20):
            await asyncio.sleep(0)
            seen["loud"].append((a + i).parents)

    await asyncio.gather(quiet(), loud())
    assert all(p == () for p in seen["quiet"])
    assert all(p == (a,) for p in seen["loud"])
    assert tg.is_tracing()


async def test_an_outer_recording_sees_nodes_of_child_tasks():
    a = tg.node(1)

    async def child():
        await asyncio.sleep(0)
        return a + 1

    with tg.recording() as rec:
        outs = await asyncio.gather(child(), child())
    assert {id(n) for n in rec} == {id(o) for o in outs}


async def test_concurrent_async_bundles_record_their_own_reads():
    params = [tg.node(f"p{i}", trainable=True) for i in range(6)]

    @tg.bundle()
    async def use(i):
        await asyncio.sleep(0)
        value = params[i].data  # read, not passed as an argument
        await asyncio.sleep(0)
        return value + "!"

    outs = await asyncio.gather(*(use(i) for i in range(6)))
    for i, out in enumerate(outs):
        assert out.data == f"p{i}!"
        assert [id(p) for p in out.parents] == [id(params[i])]


# -- no global registry ----------------------------------------------------------------------------


def _build_and_drop_graph(size):
    @tg.bundle()
    def step(x, y):
        return x + y

    @tg.bundle(trainable=True)
    def fail(x):
        raise ValueError(x)

    p = tg.node(1, trainable=True)
    q = tg.node("t", trainable=True)
    refs = [weakref.ref(p), weakref.ref(q)]
    x = p
    with tg.recording() as rec:
        for i in range(size):
            x = step(x, i) if i % 2 else x * 1
            refs.append(weakref.ref(x))
        s = q.upper().split("T")
        refs.append(weakref.ref(s))
        try:
            fail(q)
        except tg.ExecutionError as err:
            refs.append(weakref.ref(err.node))
        try:
            q + 1
        except tg.ExecutionError as err:
            refs.append(weakref.ref(err.node))
    x.backward("feedback")
    tg.subgraph([p]).to_networkx()
    tg.to_networkx(x)
    del rec
    return refs


def test_dropped_graphs_are_garbage_collected():
    refs = _build_and_drop_graph(2000)
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    assert alive == []
