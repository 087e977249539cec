"""Executors: results in order, exceptions as data, contexts carried, bounded concurrency."""

from __future__ import annotations

import contextvars
import threading

import pytest
from train_helpers import Suffixer

import tracegrad as tg
from tracegrad.train import ExactMatch, LocalExecutor, evaluate

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_results_come_in_order_with_exceptions_captured():
    def work(i):
        if i == 3:
            raise ValueError("three")
        return i * i

    with LocalExecutor(4) as ex:
        out = ex.map(work, range(8))
    assert [o.value for o in out if o.ok] == [0, 1, 4, 16, 25, 36, 49]
    assert not out[3].ok and isinstance(out[3].error, ValueError) and "three" in out[3].traceback
    with pytest.raises(ValueError):
        out[3].unwrap()


def test_on_result_is_called_once_per_item_from_the_calling_thread():
    seen, threads = [], set()

    def note(index, outcome):
        seen.append((index, outcome.value))
        threads.add(threading.get_ident())

    with LocalExecutor(3) as ex:
        ex.map(lambda x: x + 1, [10, 20, 30, 40], on_result=note)
    assert sorted(seen) == [(0, 11), (1, 21), (2, 31), (3, 41)]
    assert threads == {threading.get_ident()}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_each_call_runs_in_a_copy_of_the_callers_context(concurrency):
    def look(_):
        before = (WHO.get(), tg.is_tracing())
        WHO.set("changed in a task")  # stays in the task's copy
        return before

    token = WHO.set("caller")
    try:
        with tg.no_trace(), LocalExecutor(concurrency) as ex:
            out = ex.map(look, range(4))
    finally:
        WHO.reset(token)
    assert [o.value for o in out] == [("caller", False)] * 4
    assert WHO.get() == "nobody"


def test_concurrency_is_bounded():
    lock, state = threading.Lock(), {"now": 0, "most": 0}
    gate = threading.Barrier(3)

    def work(i):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        if i < 3:
            gate.wait(timeout=10)  # the first three run together
        with lock:
            state["now"] -= 1
        return i

    with LocalExecutor(3) as ex:
        out = ex.map(work, range(9))
    assert [o.value for o in out] == list(range(9))
    assert state["most"] == 3


def test_a_nested_map_runs_inline_instead_of_deadlocking():
    ex = LocalExecutor(2)
    try:
        out = ex.map(lambda i: [o.value for o in ex.map(lambda j: i * 10 + j, range(3))], range(4))
        assert [o.value for o in out] == [[i * 10 + j for j in range(3)] for i in range(4)]
    finally:
        ex.close()


def test_evaluation_results_do_not_depend_on_the_executor():
    data = [(w, w + "!") for w in ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op", "qr", "st"]]
    data[4] = ("ij", "nope")
    model = Suffixer("!")
    with LocalExecutor(1) as one, LocalExecutor(8) as eight:
        a = evaluate(model, data, ExactMatch(), executor=one, progress=False)
        b = evaluate(model, data, ExactMatch(), executor=eight, progress=False)
    assert [r.to_json() for r in a.results] == [r.to_json() for r in b.results]
    assert [r.output for r in a.results] == [r.output for r in b.results]
    assert a.score == b.score == 0.9


def test_any_object_with_map_is_an_executor():
    class Serial:
        def map(self, fn, items, *, on_result=None):
            from tracegrad.train import Outcome

            return [Outcome.capture(fn, item) for item in items]

    ev = evaluate(Suffixer("!"), [("ab", "ab!")], ExactMatch(), executor=Serial(), progress=False)
    assert ev.score == 1.0
    with pytest.raises(TypeError, match="map"):
        evaluate(Suffixer("!"), [("ab", "ab!")], ExactMatch(), executor=object(), progress=False)
