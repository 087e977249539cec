"""Recording blocks that end out of order, in generators, or in another context."""

from __future__ import annotations

import contextvars

import tracegrad as tg


def paused_in_no_trace():
    with tg.no_trace():
        yield 1
        yield 2


def test_a_no_trace_block_in_a_paused_generator_holds_in_the_caller_until_it_ends():
    gen = paused_in_no_trace()
    next(gen)
    assert not tg.is_tracing()  # documented: a generator runs in its caller's context
    assert not (tg.node(1) + 1).parents
    gen.close()
    assert tg.is_tracing()
    assert len((tg.node(1) + 1).parents) == 1


def test_a_generator_closed_inside_another_block_leaves_that_block_in_charge():
    gen = paused_in_no_trace()
    next(gen)
    with tg.tracing(True):
        gen.close()
        assert tg.is_tracing()
        with tg.no_trace():
            assert not tg.is_tracing()
        assert tg.is_tracing()
    assert tg.is_tracing()


def test_blocks_ended_out_of_order_restore_the_state_before_all_of_them():
    outer, inner = tg.no_trace(), tg.tracing(True)
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert tg.is_tracing()
    inner.__exit__(None, None, None)
    assert tg.is_tracing()
    with tg.no_trace():
        first, second = tg.tracing(True), tg.tracing(True)
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        second.__exit__(None, None, None)
        assert not tg.is_tracing()


def test_a_generator_finished_in_another_context_raises_nothing():
    def scenario():
        gen = paused_in_no_trace()
        next(gen)
        contextvars.copy_context().run(gen.close)  # no error about a token of another context
        assert not tg.is_tracing()  # here its block never ended (documented)
        with tg.tracing(True):
            assert tg.is_tracing()

    contextvars.copy_context().run(scenario)  # so the open block stays in that context
    assert tg.is_tracing()


def test_a_bundle_called_while_a_generator_is_paused_still_records_once_it_ends():
    @tg.bundle
    def double(x):
        return 2 * x

    gen = paused_in_no_trace()
    next(gen)
    assert not double(tg.node(3)).parents
    for _ in gen:
        pass
    x = tg.node(3)
    assert list(double(x).parents) == [x]
