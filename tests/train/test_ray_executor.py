"""RayExecutor on a real local Ray instance: LocalExecutor's results, traces relinked."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import types
import warnings
from dataclasses import dataclass

import pytest

import tracegrad as tg
from tracegrad.train import ExactMatch, LLMJudge, evaluate, train
from tracegrad.train.executors import LocalExecutor

ray = pytest.importorskip("ray")
from tracegrad.train.ray_executor import RayExecutor  # noqa: E402

LOCAL_RAY = {"num_cpus": 2, "include_dashboard": False, "_node_ip_address": "127.0.0.1", "log_to_driver": False}


@tg.model
class Greeter:
    """A small workflow: a bundled method, an operator and two parameters."""

    def __init__(self) -> None:
        self.prompt = tg.node("Hello", trainable=True)
        self.punct = tg.node("!", trainable=True)

    @tg.bundle
    def greet(self, prompt, name):
        """Greet someone; fails on names that are not words."""
        if not name.isalpha():
            raise ValueError(f"not a name: {name!r}")
        return f"{prompt} {name}"

    def forward(self, name):
        return self.greet(self.prompt, name) + self.punct


@dataclass
class Scored:
    output: tg.Node
    score: float
    feedback: str


class Task:
    """What an evaluation maps: run the workflow on one example and score it."""

    def __init__(self, model: Greeter) -> None:
        self.model = model

    def __call__(self, name: str) -> Scored:
        out = self.model(name)
        score = float(len(out.data))
        return Scored(out, score, f"{name}: {'long' if score > 9 else 'short'}")


NAMES = ["Ada", "Grace", "x1", "Barbara", "Edsger", "Alan"]


@pytest.fixture(scope="module")
def executor():
    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # a local instance reports nothing
        ex = RayExecutor(concurrency=4, init_kwargs=LOCAL_RAY)
        yield ex
        ex.close()


def summary(outcomes):
    """What must not depend on the executor: outputs, scores, feedback, errors, in order."""
    rows = []
    for o in outcomes:
        if o.ok:
            rows.append((o.value.output.data, o.value.score, o.value.feedback))
        else:
            rows.append((type(o.error).__name__, type(o.error.exception).__name__, str(o.error.exception)))
    return rows


def test_importing_the_module_does_not_import_ray():
    code = "import sys, tracegrad.train, tracegrad.train.ray_executor; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_it_starts_workers_and_reports_the_start_up_time(executor):
    assert ray.is_initialized()
    assert executor.workers == 2 and executor.concurrency == 4
    assert executor.startup_s > 0


@pytest.mark.slow
def test_results_are_local_executor_results_in_the_same_order(executor):
    model = Greeter()
    with LocalExecutor(4) as local:
        expected = local.map(Task(model), NAMES)
    got = executor.map(Task(model), NAMES)
    assert summary(got) == summary(expected)
    assert summary(got)[2] == ("ExecutionError", "ValueError", "not a name: 'x1'")
    assert all(isinstance(o.value, Scored) for o in got if o.ok)  # the driver's own class


@pytest.mark.slow
def test_backward_on_a_returned_output_reaches_the_driver_parameters(executor):
    model = Greeter()
    first, _, failed = executor.map(Task(model), NAMES[:3])
    out = first.value.output
    greeting, punct = out.parents
    assert punct is model.punct and greeting.parents[0] is model.prompt
    assert all(p.serial < n.serial for n in tg.trace.ancestors([out]) for p in n.parents)

    out.backward("too short")
    failed.error.node.backward("use a real name")
    assert [f.value for f in model.prompt.feedback] == ["too short", "use a real name"]
    assert [f.value for f in model.punct.feedback] == ["too short"]
    graph = tg.subgraph(model.parameters())
    assert set(graph.outputs) == {out, failed.error.node}
    assert set(graph.parameters) == {model.prompt, model.punct}


@pytest.mark.slow
def test_workers_run_the_current_parameter_values(executor):
    model = Greeter()
    model.prompt.update("Hi")
    (first,) = executor.map(Task(model), ["Ada"])
    model.prompt.update("Dear")
    (second,) = executor.map(Task(model), ["Ada"])
    assert (first.value.output.data, second.value.output.data) == ("Hi Ada!", "Dear Ada!")
    assert second.value.output.parents[0].parents[0] is model.prompt


@pytest.mark.slow
def test_on_result_hears_of_every_item_once(executor):
    heard = []
    outcomes = executor.map(Task(Greeter()), NAMES, on_result=lambda i, o: heard.append((i, o.ok)))
    assert sorted(heard) == [(i, o.ok) for i, o in enumerate(outcomes)]


@pytest.mark.slow
def test_an_item_that_cannot_be_sent_fails_alone(executor):
    unsendable = (n for n in "generator")
    outcomes = executor.map(len, ["abc", unsendable, "de"])
    assert [o.value for o in outcomes if o.ok] == [3, 2]
    assert not outcomes[1].ok and outcomes[1].traceback


@pytest.mark.slow
def test_an_exception_in_the_function_comes_back_as_data(executor):
    def divide(x):
        return 10 // x

    outcomes = executor.map(divide, [5, 0, 2])
    assert [o.value for o in outcomes] == [2, None, 5]
    assert isinstance(outcomes[1].error, ZeroDivisionError) and "ZeroDivisionError" in outcomes[1].traceback


@tg.bundle
def salute(opening, name):
    """Open a letter."""
    return f"{opening}, {name}"


def fresh_opening(name):
    """A workflow that makes its parameter on each call (on a worker: the worker's own)."""
    return salute(tg.node("Hey", trainable=True, name="opening"), name)


@pytest.mark.slow
def test_parameters_made_on_workers_are_matched_by_name_or_reported(executor):
    opening = tg.node("Hey", trainable=True, name="opening")
    executor.parameters = {"opening": opening}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            (matched,) = executor.map(fresh_opening, ["Ada"])
    finally:
        executor.parameters = None
    assert matched.value.parents[0] is opening
    with pytest.warns(RuntimeWarning, match="opening"):
        (stray,) = executor.map(fresh_opening, ["Bo"])
    assert stray.value.parents[0] is not opening and stray.value.parents[0].value == "Hey"


@pytest.mark.slow
def test_code_the_workers_cannot_import_fails_as_data_until_sent_by_value(executor):
    scratch = types.ModuleType("tg_scratch_workflows")
    exec("def shout(text):\n    return text.upper()\n", scratch.__dict__)
    sys.modules[scratch.__name__] = scratch  # importable here, not on the workers
    try:
        missing = executor.map(scratch.shout, ["a", "b"])
        before = executor.by_value
        executor.by_value = [*before, scratch.__name__]
        try:
            sent = executor.map(scratch.shout, ["a", "b"])
        finally:
            executor.by_value = before
    finally:
        del sys.modules[scratch.__name__]
    assert all("could not load the function" in str(o.error) for o in missing)
    assert "tg_scratch_workflows" in missing[0].traceback
    assert [o.value for o in sent] == ["A", "B"]


def greeting_guide(example, output):
    """Score a greeting by its length; say so."""
    return float(len(output)), f"{example.input} got {len(output)} characters"


@pytest.mark.slow
def test_evaluate_on_ray_matches_evaluate_on_threads(executor):
    dataset = [{"input": name} for name in NAMES]
    local = evaluate(Greeter(), dataset, greeting_guide, executor=LocalExecutor(4), progress=False)
    remote = evaluate(Greeter(), dataset, greeting_guide, executor=executor, progress=False)

    def rows(evaluation):
        return [(r.index, r.score, r.feedback, r.output, r.error, r.succeeded) for r in evaluation.results]

    assert rows(remote) == rows(local)
    assert remote.results[2].error == "ValueError: not a name: 'x1'"


@pytest.mark.slow
def test_feedback_from_a_traced_evaluation_on_ray_reaches_the_model(executor):
    model = Greeter()
    result = evaluate(model, [{"input": "Ada"}, {"input": "x1"}], greeting_guide, executor=executor, trace=True)
    for r in result.results:
        r.node.backward(r.feedback)
    assert [f.value for f in model.prompt.feedback] == [r.feedback for r in result.results]


@tg.bundle
def add_suffix(text, suffix):
    """Append the suffix."""
    return text + suffix


class Suffixed(tg.Module):
    """``input + suffix``, the suffix trained."""

    def __init__(self) -> None:
        self.suffix = tg.parameter("", tg.Text(max_length=10))

    def forward(self, text):
        return add_suffix(text, self.suffix)


def trained(executor):
    from train_helpers import ScriptedOptimizer, always

    model = Suffixed()
    optimizer = ScriptedOptimizer(model, always({"suffix": "!"}))
    data = [("ab", "ab!"), ("cd", "cd!"), ("ef", "ef!")]
    train(model, data, ExactMatch(), optimizer, batch_size=3, shuffle=False, epochs=2, quiet=True, executor=executor)
    return model.state_dict(), optimizer.seen


@pytest.mark.slow
def test_training_on_ray_is_training_on_threads(executor):
    values, seen = trained(executor)
    assert (values, seen) == trained(LocalExecutor(4))
    assert values == {"suffix": "!"} and len(seen) == 1 and "Wrong: expected 'ab!', got 'ab'" in seen[0][0]


def priced_reply(request):
    """A reply whose tokens follow from the prompt, at a quarter dollar a call."""
    prompt = request.messages[-1]["content"]
    return {"text": prompt.upper(), "prompt_tokens": len(prompt), "completion_tokens": 2, "cost_usd": 0.25}


def verdict_reply(request):
    """The judge's verdict: always the same tokens and price."""
    verdict = {"reasoning": "it greets", "score": 0.5, "feedback": "fine"}
    return {"text": json.dumps(verdict), "prompt_tokens": 7, "completion_tokens": 3, "cost_usd": 0.125}


class Asker:
    """A pipeline that asks its model about its input; ``on_thread``: once more, on a
    thread of its own (started without the item's context)."""

    def __init__(self, llm, on_thread=False):
        self.llm = llm
        self.on_thread = on_thread

    def __call__(self, name):
        if self.on_thread:
            thread = threading.Thread(target=self.llm.complete, args=(f"Wave at {name}",))
            thread.start()
            thread.join()
        return self.llm.complete(f"Greet {name}").text


def scripted_llm(reply=priced_reply, **kw):
    return tg.LLM("test/model", transport=tg.ScriptedTransport(reply), **{"cache": False, **kw})


def spend_of(executor, **llm):
    """An evaluation's spend and its two ledgers' totals afterwards."""
    model = scripted_llm(**llm)
    judge = LLMJudge(scripted_llm(verdict_reply), "greets by name")
    pipeline = Asker(model, on_thread=True)
    data = [{"input": name} for name in ["Ada", "Grace", "Barbara", "Edsger", "Alan", "Kay"]]
    result = evaluate(pipeline, data, judge, executor=executor, usage=model.usage, progress=False)
    assert all(r.error is None for r in result.results)
    return result.spend, model.usage.snapshot(), judge.llm.usage.snapshot()


@pytest.mark.slow
def test_workers_spend_is_the_driver_spend_as_on_threads(executor):
    remote = spend_of(executor)
    assert remote == spend_of(LocalExecutor(4))
    spend, model, judge = remote
    prompts = 6 * len("Greet ") + 6 * len("Wave at ") + 2 * len("AdaGraceBarbaraEdsgerAlanKay")
    assert (model.calls, model.prompt_tokens, model.completion_tokens, model.cost_usd) == (12, prompts, 24, 3.0)
    assert (judge.calls, judge.prompt_tokens, judge.completion_tokens, judge.cost_usd) == (6, 42, 18, 0.75)
    assert (spend.calls, spend.prompt_tokens, spend.completion_tokens) == (18, prompts + 42, 42)
    assert spend.cost_usd == 3.75 and spend.cache_hits == 0


@pytest.mark.slow
def test_a_call_budget_stops_the_workers_within_a_batch_then_the_driver(executor):
    names = [{"input": f"n{i}"} for i in range(12)]
    spent = []
    for runner in (LocalExecutor(4), executor):
        llm = scripted_llm(usage=tg.Usage(tg.Budget(max_calls=3)))
        with pytest.raises(tg.BudgetExceeded):
            evaluate(Asker(llm), names, greeting_guide, executor=runner, progress=False)
        with pytest.raises(tg.BudgetExceeded):
            llm.complete("one more")
        spent.append(llm.usage.calls)
    local, remote = spent
    assert local == 3
    assert 3 <= remote <= 3 * executor.workers  # each worker may spend what was left


@pytest.mark.slow
def test_a_cached_call_on_a_worker_counts_as_a_cache_hit(executor, tmp_path):
    spends = []
    for name, runner in [("local", LocalExecutor(4)), ("ray", executor)]:
        cache = tg.ResponseCache(tmp_path / name)
        scripted_llm(cache=cache, temperature=0).complete("Greet Ada")  # the same request, answered before
        spends.append(spend_of(runner, cache=cache, temperature=0)[0])
    assert spends[0] == spends[1]
    assert (spends[1].calls, spends[1].cache_hits) == (17, 1)


@pytest.mark.slow
def test_an_executor_joining_a_running_ray_leaves_it_running(executor):
    with RayExecutor(concurrency=2) as second:
        assert [o.value for o in second.map(len, ["ab", "c"])] == [2, 1]
    assert ray.is_initialized()
    assert [o.value for o in executor.map(len, ["abc"])] == [3]


@pytest.mark.slow
def test_close_stops_the_ray_instance_it_started(executor):
    executor.close()
    assert not ray.is_initialized()
    with pytest.raises(RuntimeError, match="closed"):
        executor.map(len, ["a"])
