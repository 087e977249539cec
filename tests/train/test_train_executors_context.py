"""A LocalExecutor's threads run in the caller's recording context: open recordings,
kept children and sandbox settings apply to the calls made in them."""

from __future__ import annotations

import pytest

import tracegrad as tg
from tracegrad.train import LocalExecutor


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_recording_opened_by_the_caller_collects_the_nodes_made_in_the_threads(concurrency):
    x = tg.node(1, name="x")
    with tg.recording() as recorded, LocalExecutor(concurrency) as pool:
        outcomes = pool.map(lambda i: x + i, range(6))
    made = [o.value for o in outcomes]
    assert [n.data for n in made] == [1, 2, 3, 4, 5, 6]
    assert {id(n) for n in recorded} == {id(n) for n in made}


def test_children_kept_by_the_caller_are_kept_in_the_threads():
    x = tg.node(2, name="x")
    with tg.keeping_children(), LocalExecutor(3) as pool:
        outcomes = pool.map(lambda i: x * i, range(3))
    assert {id(c) for c in x.children} == {id(o.value) for o in outcomes}


def test_the_callers_sandbox_settings_hold_in_the_threads():
    with tg.sandboxing(timeout=7.0), LocalExecutor(2) as pool:
        outcomes = pool.map(lambda _: tg.sandbox.current_sandbox().timeout, range(2))
    assert [o.value for o in outcomes] == [7.0, 7.0]
