"""The trainer's progress bar: it ticks per step and says what a long step is doing."""

from __future__ import annotations

import io

import tracegrad as tg
from tracegrad.train.progress import ProgressBar


def test_the_bar_says_what_the_step_in_progress_is_doing():
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(tg.RunStarted(total_steps=3))
    bar(tg.StepStarted(step=1))
    assert "step 1: running the batch" in out.getvalue()
    bar(tg.Evaluated(step=1, split="batch", score=0.5))
    assert "step 1: proposing" in out.getvalue()  # what a slow model call shows meanwhile
    bar(tg.Proposed(step=1, sample=0))
    assert "step 1: scoring the proposals" in out.getvalue()
    bar(tg.Evaluated(step=1, split="validation", sample=1, score=0.75))
    assert "step 1: validated proposal 2" in out.getvalue()
    bar(tg.StepEnded(step=1, batch_score=0.5, best_score=0.75, total={"calls": 4, "cost_usd": 0.0123}))
    text = out.getvalue()
    assert "1/3" in text and "batch=0.500, best=0.750, calls=4, cost=$0.0123" in text
    bar(tg.StepStarted(step=2))
    assert "best=0.750, calls=4, cost=$0.0123, step 2: running the batch" in out.getvalue()
    bar(tg.RunEnded(reason="done"))
    assert bar.bar is None


def test_a_resumed_run_starts_the_bar_at_its_steps():
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(tg.RunStarted(total_steps=6, step=4, resumed=True))
    assert "4/6" in out.getvalue()
    bar.close()


def test_events_outside_a_run_are_ignored():
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(tg.StepEnded(step=1))
    bar(tg.RunEnded(reason="done"))
    assert out.getvalue() == "" and bar.bar is None


def test_the_model_in_use_is_printed_at_the_start_of_a_run(capsys):
    import json

    prompt = tg.parameter("Hello", name="greeting")
    llm = tg.LLM("stand-in/model", transport=tg.ScriptedTransport([json.dumps({"suggestion": {}})] * 4), cache=False)
    tg.train(
        lambda x: prompt + x,
        [(" a", "Hello a")],
        lambda ex, out: (out == ex.label, "ok"),
        tg.OptoPrime(prompt, llm=llm),
    )
    assert "model: stand-in/model" in capsys.readouterr().err
    out = io.StringIO()
    ProgressBar(file=out)(tg.RunStarted(total_steps=1, settings={"model": None}))
    assert "model:" not in out.getvalue()
