"""Run directories: a checkpoint after every step, resuming, the JSON-lines log."""

from __future__ import annotations

import json

import pytest
from train_helpers import ScriptedOptimizer, Suffixer, state_json, suffix_data

import tracegrad as tg
from tracegrad.train import ExactMatch, StopAfter, Trainer, train
from tracegrad.train.run import RunDir


def suggest(opt, sample, texts):
    """Walks through suffixes, '!' third: a run with rejected and accepted steps."""
    return {"suffix": ["?", "#", "!", "!!"][len(opt.memory) % 4]}


def run(run_dir=None, **options):
    model = Suffixer()
    opt = ScriptedOptimizer(model, suggest)
    options = {"batch_size": 2, "epochs": 3, "validation": suffix_data(n=2), "quiet": True, **options}
    history = train(model, suffix_data(), ExactMatch(), opt, run_dir=run_dir, **options)
    return history, model, opt


def test_every_step_is_checkpointed(tmp_path):
    seen = []

    def check(record):
        data = RunDir(tmp_path).read()
        seen.append(data["step"])
        assert data["history"]["steps"][-1]["step"] == record.step

    history, model, opt = run(tmp_path, on_step=check)
    assert seen == list(range(1, len(history) + 1))
    data = RunDir(tmp_path).read()
    assert data["parameters"] == model.state_dict() and data["optimizer"] == opt.state_dict()
    assert data["history"] == history.to_json() and data["position"] == {"epoch": 3, "batch": 0}
    saved = tg.read_checkpoint(tmp_path / "parameters.json")
    assert saved["parameters"] == model.state_dict() and saved["extra"]["optimizer"] == opt.state_dict()


def test_a_stopped_run_resumes_where_it_stopped_and_ends_like_an_uninterrupted_one(tmp_path):
    whole, whole_model, whole_opt = run(tmp_path / "whole")
    first, _, _ = run(tmp_path / "parts", stop=StopAfter(steps=4))
    assert len(first) == 4 and first.stop_reason == "4 steps"
    resumed, model, opt = run(tmp_path / "parts", resume=True)
    assert resumed.to_json() == whole.to_json()
    assert model.state_dict() == whole_model.state_dict() and state_json(opt) == state_json(whole_opt)
    # a finished run resumed again makes no more steps
    again, _, _ = run(resume=tmp_path / "parts")
    assert again.to_json() == whole.to_json()


def test_a_run_dir_holding_a_run_is_not_overwritten(tmp_path):
    run(tmp_path, stop=StopAfter(steps=1))
    with pytest.raises(tg.TracegradError, match="resume=True"):
        run(tmp_path)
    with pytest.raises(tg.TracegradError, match="batch_size"):
        run(tmp_path, resume=True, batch_size=3)


def test_resume_cleans_temporary_files_and_cuts_the_log_back(tmp_path):
    run(tmp_path, stop=StopAfter(steps=2))
    log = tmp_path / "log.jsonl"
    lines = log.read_text().splitlines()
    (tmp_path / ".checkpoint.json.abc123.tmp").write_text('{"half": ')
    with log.open("a") as fh:
        fh.write('{"event": "proposal", "step": 3, "sampl')  # a write cut by a kill
    run(tmp_path, resume=True)
    assert not list(tmp_path.glob(".*.tmp"))
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [json.loads(line) for line in lines] == events[: len(lines)]
    assert [e["event"] for e in events].count("start") == 1 and events[len(lines)]["event"] == "resume"


def test_the_log_has_every_proposal_with_its_request_and_reply(tmp_path):
    history, _, _ = run(tmp_path)
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "stop" and kinds.count("step") == len(history)
    proposals = [e for e in events if e["event"] == "proposal"]
    assert len(proposals) == sum(len(s.proposals) for s in history)
    first = proposals[0]
    assert first["report"]["messages"][0]["content"].startswith("Feedback on a minibatch")
    assert json.loads(first["report"]["reply"]) == {"suffix": "?"}
    assert first["calls"] == 1 and first["cost_usd"] == pytest.approx(0.001)
    steps = [e for e in events if e["event"] == "step"]
    assert [s["status"] for s in steps] == [s.status for s in history]


def test_a_resumed_run_keeps_its_evaluation_cache(tmp_path):
    calls = []

    class Counting(Suffixer):
        def forward(self, text):
            calls.append(text)
            return super().forward(text)

    def once(**options):
        model = Counting()
        opt = ScriptedOptimizer(model, suggest)
        trainer = Trainer(
            model, ExactMatch(), opt, batch_size=2, validation=suffix_data(n=2), quiet=True, run_dir=tmp_path, **options
        )
        trainer.fit(suffix_data())
        return trainer

    once(stop=StopAfter(steps=1))
    calls.clear()
    trainer = once(resume=True, stop=StopAfter(steps=1))  # stops before any new step
    assert calls == [] and len(trainer.cache) > 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(pool={"candidates": "not a list"}),
        lambda d: d.update(history={"steps": [{"step": "one"}]}),
        lambda d: d.update(rng=[3, [1, 2], None]),
        lambda d: d.update(position={"epoch": "x"}),
    ],
)
def test_a_damaged_checkpoint_resumes_nothing_and_changes_nothing(tmp_path, damage):
    run(tmp_path, stop=StopAfter(steps=2))
    path = tmp_path / "checkpoint.json"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    model = Suffixer("start")
    opt = ScriptedOptimizer(model, suggest)
    before = (model.state_dict(), state_json(opt), (tmp_path / "log.jsonl").read_bytes())
    options = {"batch_size": 2, "epochs": 3, "validation": suffix_data(n=2), "quiet": True}  # as run() made it
    with pytest.raises(tg.TracegradError) as err:
        train(model, suffix_data(), ExactMatch(), opt, run_dir=tmp_path, resume=True, **options)
    assert "other settings" not in str(err.value)
    assert (model.state_dict(), state_json(opt), (tmp_path / "log.jsonl").read_bytes()) == before
