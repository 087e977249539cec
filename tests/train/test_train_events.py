"""The trainer's run events: the exact sequence of a small run, callbacks that fail, a
failed run, a spent budget, quiet mode, and the trace saved at each step."""

from __future__ import annotations

import json
import logging

import pytest
from train_helpers import ScriptedOptimizer, Suffixer

import tracegrad as tg
from tracegrad.llm import BudgetExceeded
from tracegrad.train import ExactMatch, StopAfter, train

# step 1's batch scores 0.5 and its proposal 0 (rejected); step 2's batch 0 and its proposal 1
DATA = [("ab", "ab!"), ("cd", "cd?"), ("ef", "ef!"), ("gh", "gh!")]


def hash_then_bang(opt, sample, texts):
    return {"suffix": ["#", "!"][len(opt.seen) - 1]}


def run(**options):
    model = Suffixer("?")
    opt = ScriptedOptimizer(model, options.pop("suggest", hash_then_bang))
    options = {"batch_size": 2, "shuffle": False, "quiet": True, **options}
    history = train(model, DATA, ExactMatch(), opt, **options)
    return history, model, opt


def summary(event):
    """The fields of an event this test pins down."""
    keep = {
        "run_started": ("step", "total_steps", "version", "parameters", "resumed"),
        "step_started": ("step", "epoch", "batch", "examples"),
        "evaluated": ("step", "split", "sample", "score", "examples"),
        "proposed": ("step", "sample", "optimizer", "status", "changes", "calls"),
        "decided": ("step", "accepted", "sample", "reason"),
        "step_ended": ("step", "status", "accepted", "batch_score", "score", "changes"),
        "run_ended": ("reason", "steps", "accepted", "best_score", "parameters", "error"),
    }[event.kind]
    return (event.kind, {k: getattr(event, k) for k in keep})


def test_a_callback_receives_the_runs_events_in_order():
    seen = []
    history, _, _ = run(callbacks=[seen.append])
    start = seen[0]
    assert [summary(e) for e in seen] == [
        (
            "run_started",
            {"step": 0, "total_steps": 2, "version": start.version, "parameters": {"suffix": "?"}, "resumed": False},
        ),
        ("step_started", {"step": 1, "epoch": 0, "batch": 0, "examples": [0, 1]}),
        ("evaluated", {"step": 1, "split": "batch", "sample": None, "score": 0.5, "examples": 2}),
        (
            "proposed",
            {
                "step": 1,
                "sample": 0,
                "optimizer": "ScriptedOptimizer",
                "status": "updated",
                "changes": {"suffix": {"old": "?", "new": "#"}},
                "calls": 1,
            },
        ),
        ("evaluated", {"step": 1, "split": "candidate", "sample": 0, "score": 0.0, "examples": 2}),
        (
            "decided",
            {
                "step": 1,
                "accepted": False,
                "sample": None,
                "reason": "no proposal kept its score (proposal 0: batch score 0 < 0.5)",
            },
        ),
        (
            "step_ended",
            {"step": 1, "status": "rejected", "accepted": False, "batch_score": 0.5, "score": 0.5, "changes": {}},
        ),
        ("step_started", {"step": 2, "epoch": 0, "batch": 1, "examples": [2, 3]}),
        ("evaluated", {"step": 2, "split": "batch", "sample": None, "score": 0.0, "examples": 2}),
        (
            "proposed",
            {
                "step": 2,
                "sample": 0,
                "optimizer": "ScriptedOptimizer",
                "status": "updated",
                "changes": {"suffix": {"old": "?", "new": "!"}},
                "calls": 1,
            },
        ),
        ("evaluated", {"step": 2, "split": "candidate", "sample": 0, "score": 1.0, "examples": 2}),
        (
            "decided",
            {"step": 2, "accepted": True, "sample": 0, "reason": "proposal 0 scored 1 on the batch (from 0)"},
        ),
        (
            "step_ended",
            {
                "step": 2,
                "status": "accepted",
                "accepted": True,
                "batch_score": 0.0,
                "score": 1.0,
                "changes": {"suffix": {"old": "?", "new": "!"}},
            },
        ),
        (
            "run_ended",
            {
                "reason": "1 epochs",
                "steps": 2,
                "accepted": 1,
                "best_score": 1.0,
                "parameters": {"suffix": "!"},
                "error": None,
            },
        ),
    ]
    ended = seen[-2]
    assert ended.record == history[1].to_json() and ended.version == history.best_version
    assert seen[6].parameters == {"suffix": "?"} and ended.parameters == {"suffix": "!"}
    assert ended.total["calls"] == 2 and ended.total["cost_usd"] == pytest.approx(0.002)
    assert json.loads(ended.reports[0]["reply"]) == {"suffix": "!"}
    assert all(json.dumps(e.to_json()) for e in seen)  # every event is JSON data
    assert [e.timestamp for e in seen] == sorted(e.timestamp for e in seen)


def test_the_optimizers_subscribers_see_the_trainers_events_too():
    model = Suffixer("?")
    opt = ScriptedOptimizer(model, hash_then_bang)
    seen = []
    opt.subscribe(seen.append)
    train(model, DATA, ExactMatch(), opt, batch_size=2, shuffle=False, quiet=True)
    assert seen[0].kind == "run_started" and seen[-1].kind == "run_ended" and len(seen) == 14


def test_a_callback_that_raises_is_logged_once_and_the_run_goes_on(caplog):
    calls = []

    def broken(event):
        calls.append(event.kind)
        raise ValueError("a bug in the callback")

    expected, _, _ = run()
    with caplog.at_level(logging.WARNING, logger="tracegrad.events"):
        history, model, _ = run(callbacks=[broken])
    assert history.to_json()["steps"] == expected.to_json()["steps"] and model.suffix.value == "!"
    assert len(calls) == 14
    assert [r.name for r in caplog.records if "broken" in r.getMessage()] == ["tracegrad.events"]


def test_callbacks_must_be_callable():
    with pytest.raises(tg.TracegradError, match="callables taking an event"):
        run(callbacks=["print"])


def test_a_run_that_fails_ends_with_its_error_and_resumes_without_it(tmp_path):
    def fails_second(opt, sample, texts):
        if len(opt.seen) == 2:
            raise RuntimeError("the optimizer broke")
        return {"suffix": "#"}

    seen = []
    with pytest.raises(RuntimeError, match="broke"):
        run(suggest=fails_second, callbacks=[seen.append], run_dir=tmp_path)
    assert [e.kind for e in seen[-3:]] == ["evaluated", "error", "run_ended"]
    error, ended = seen[-2:]
    assert (error.step, error.error, error.message) == (2, "RuntimeError", "the optimizer broke")
    assert ended.error == "RuntimeError: the optimizer broke" and ended.steps == 1
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1] == {"event": "error", "step": 2, "error": "RuntimeError", "message": "the optimizer broke"}
    run(run_dir=tmp_path, resume=True)
    kinds = [json.loads(line)["event"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert "error" not in kinds and kinds[-1] == "stop"


def test_a_run_refused_before_it_starts_emits_nothing_and_leaves_the_log_alone(tmp_path):
    run(run_dir=tmp_path, stop=StopAfter(steps=1))
    before = (tmp_path / "log.jsonl").read_text()
    seen = []
    with pytest.raises(tg.TracegradError, match="resume=True"):
        run(run_dir=tmp_path, callbacks=[seen.append])
    assert seen == [] and (tmp_path / "log.jsonl").read_text() == before


def test_a_spent_budget_is_an_event_and_ends_the_run():
    def spent(opt, sample, texts):
        raise BudgetExceeded("max_calls", 1, 1, calls=1)

    seen = []
    history, _, _ = run(suggest=spent, callbacks=[seen.append])
    assert [e.kind for e in seen[-2:]] == ["budget_exhausted", "run_ended"]
    assert seen[-2].step == 0 and "max_calls" in seen[-2].message
    assert seen[-1].reason.startswith("budget:") and seen[-1].error is None and len(history) == 0


def test_quiet_mode_prints_nothing(capfd):
    run(quiet=True)
    assert capfd.readouterr() == ("", "")


def test_without_quiet_the_bar_shows_steps_scores_and_cost(capfd):
    run(quiet=False)
    out, err = capfd.readouterr()
    assert out == ""
    assert "train" in err and "2/2" in err and "best=1.000" in err and "cost=$0.0020" in err


def test_each_step_saves_its_trace_for_the_report(tmp_path):
    seen = []

    def trace_names(event):
        if event.kind == "step_ended":
            seen.append({n.name for n in tg.load_trace(tmp_path / "trace.json").nodes})

    run(run_dir=tmp_path, callbacks=[trace_names])
    assert len(seen) == 2 and all("suffix" in names for names in seen)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_trace_that_cannot_be_saved_does_not_break_the_step(tmp_path, monkeypatch, caplog):
    import tracegrad.visualize

    def broken(*args, **kwargs):
        raise OSError("read-only file system")

    monkeypatch.setattr(tracegrad.visualize, "save_trace", broken)
    with caplog.at_level(logging.WARNING, logger="tracegrad.train"):
        history, model, _ = run(run_dir=tmp_path)
    assert len(history) == 2 and model.suffix.value == "!" and not (tmp_path / "trace.json").exists()
    assert len([r for r in caplog.records if "trace" in r.getMessage()]) == 1
