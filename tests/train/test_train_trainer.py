"""The trainer: one backward per batch, accept or roll back, skip, stop conditions, budgets."""

from __future__ import annotations

import pytest
from train_helpers import ScriptedOptimizer, Suffixer, always, state_json, suffix_data

import tracegrad as tg
from tracegrad.train import (
    ExactMatch,
    NoImprovement,
    StopAfter,
    TargetScore,
    Trainer,
    batch_feedback,
    join_batch,
    train,
)


def test_a_batch_is_one_backward_carrying_every_examples_feedback():
    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    data = [("ab", "ab!"), ("cd", "cd!"), ("ef", "ef")]
    train(model, data, ExactMatch(), opt, batch_size=3, shuffle=False, quiet=True)
    assert len(opt.seen) == 1 and len(opt.seen[0]) == 1  # one propose, one feedback entry
    text = opt.seen[0][0]
    assert "minibatch of 3 examples" in text
    assert "Example 1 (input 'ab'; score 0): Wrong: expected 'ab!', got 'ab'." in text
    assert "Example 2 (input 'cd'; score 0): Wrong" in text
    assert "Example 3 (input 'ef'; score 1): Correct." in text


def test_join_batch_is_one_operation_over_the_outputs_in_order():
    from tracegrad.train import evaluate

    model = Suffixer("!")
    ev = evaluate(model, [("ab", "ab!"), ("cd", "x")], ExactMatch(), trace=True, progress=False)
    node, feedback = join_batch(ev.results)
    assert node.parents == (ev.results[0].node, ev.results[1].node)
    assert node.value == ["ab!", "cd!"]
    assert feedback == batch_feedback(ev.results)
    node.backward(feedback)
    assert [f.value for f in model.suffix.feedback] == [feedback]


def test_a_custom_aggregation_replaces_the_default():
    seen = []

    def last_only(results):
        seen.append(len(results))
        return results[-1].node, "only the last one: " + results[-1].feedback

    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    train(model, suffix_data(n=4), ExactMatch(), opt, batch_size=2, aggregate=last_only, quiet=True, epochs=1)
    assert seen == [2] and opt.seen[0][0].startswith("only the last one: Wrong")


def test_a_proposal_that_lowers_the_validation_score_changes_nothing():
    model = Suffixer("!")
    # the batch is wrong with '!', and '?' fixes it, but validation wants '!'
    data = [("ab", "ab?"), ("cd", "cd?")]
    val = [("x", "x!"), ("y", "y!")]
    opt = ScriptedOptimizer(model, always({"suffix": "?"}))
    opt.memory = [{"suffix": "!"}]
    opt.step_count = 4
    before_state, before_values = state_json(opt), model.state_dict()
    history = train(model, data, ExactMatch(), opt, batch_size=2, validation=val, quiet=True)
    (step,) = history.steps
    assert step.status == "rejected" and not step.accepted
    assert step.candidate_batch_score == 1.0 and step.candidate_validation_score == 0.0
    assert step.validation_score == 1.0 == history.initial_score == history.best_score
    assert state_json(opt) == before_state and model.state_dict() == before_values
    assert step.proposals[0].outcome == "dropped" and "validation score 0 < 1" in step.proposals[0].reason
    # the same run without validation accepts the proposal, on the batch's word
    history = train(model, data, ExactMatch(), opt, batch_size=2, quiet=True)
    assert history.steps[0].accepted and model.suffix.value == "?" and opt.step_count == 5


def test_a_proposal_that_lowers_the_batch_score_is_not_validated():
    model = Suffixer("!")
    data = [("ab", "ab!"), ("cd", "cd?")]
    opt = ScriptedOptimizer(model, always({"suffix": "#"}))
    history = train(model, data, ExactMatch(), opt, batch_size=2, validation=[("x", "x#")], quiet=True)
    (step,) = history.steps
    assert step.status == "rejected" and step.proposals[0].validation_score is None
    assert "batch score 0 < 0.5" in step.proposals[0].reason
    assert model.suffix.value == "!" and opt.step_count == 0


def test_a_batch_that_already_succeeds_calls_no_optimizer():
    model = Suffixer("!")
    opt = ScriptedOptimizer(model, always({"suffix": "?"}))
    history = train(model, suffix_data(n=4), ExactMatch(), opt, batch_size=2, epochs=2, quiet=True)
    assert [s.status for s in history] == ["skipped"] * 4
    assert opt.seen == [] and history.spend.calls == 0


def test_an_invalid_proposal_is_recorded_and_nothing_changes():
    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "x" * 50}))  # over max_length
    history = train(model, suffix_data(n=2), ExactMatch(), opt, batch_size=2, quiet=True)
    (step,) = history.steps
    assert step.status == "rejected" or step.status == "no_proposal"
    assert step.proposals[0].outcome == "invalid" and "suffix" in step.proposals[0].reason
    assert model.suffix.value == "" and opt.step_count == 0


def test_history_records_scores_costs_and_versions():
    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    history = train(model, suffix_data(n=4), ExactMatch(), opt, batch_size=2, validation=suffix_data(n=2), quiet=True)
    first, second = history.steps
    assert first.accepted and first.batch_score == 0.0 and first.candidate_batch_score == 1.0
    assert first.validation_score == 1.0 and history.initial_score == 0.0
    assert first.spend.calls == 1 and first.spend.prompt_tokens == 10 and first.spend.cost_usd == pytest.approx(0.001)
    assert history.versions[first.parent] == {"suffix": ""} and history.versions[first.version] == {"suffix": "!"}
    assert second.status == "skipped" and second.parent == second.version == first.version
    assert history.best_version == first.version and history.best_values == {"suffix": "!"}
    assert history.stop_reason == "1 epochs"
    assert tg.train.History.from_json(history.to_json()) == history


def counting_suggestions():
    """A new suffix every time, never the right one: '1', '2', ..."""
    return lambda opt, sample, texts: {"suffix": str(len(opt.seen))}


def test_stop_after_steps_and_target_score_compose():
    model = Suffixer()
    opt = ScriptedOptimizer(model, counting_suggestions())
    history = train(
        model, suffix_data(), ExactMatch(), opt, batch_size=1, epochs=5, stop=StopAfter(steps=3), quiet=True
    )
    assert len(history) == 3 and history.stop_reason == "3 steps"

    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    stop = StopAfter(steps=10) | TargetScore(1.0)
    history = train(
        model,
        suffix_data(),
        ExactMatch(),
        opt,
        validation=suffix_data(n=2),
        batch_size=1,
        epochs=5,
        stop=stop,
        quiet=True,
    )
    assert len(history) == 1 and "reached the target" in history.stop_reason

    # a run that starts at its target makes no step
    history = train(Suffixer("!"), suffix_data(), ExactMatch(), opt, validation=suffix_data(n=2), stop=stop, quiet=True)
    assert len(history) == 0 and "reached the target" in history.stop_reason

    both = StopAfter(steps=2) & StopAfter(calls=4)
    model = Suffixer()
    opt = ScriptedOptimizer(model, counting_suggestions())
    history = train(model, suffix_data(), ExactMatch(), opt, batch_size=1, epochs=5, stop=both, quiet=True)
    assert len(history) == 4 and history.stop_reason == "4 steps and 4 model calls (limit 4)"


def test_stop_on_tokens_dollars_and_no_improvement():
    for stop, steps in [
        (StopAfter(tokens=30), 2),
        (StopAfter(cost_usd=0.003), 3),
        (NoImprovement(patience=2), 3),  # step 1 sets the best, 2 and 3 do not raise it
    ]:
        model = Suffixer()
        opt = ScriptedOptimizer(model, counting_suggestions())
        history = train(model, suffix_data(), ExactMatch(), opt, batch_size=1, epochs=3, stop=stop, quiet=True)
        assert len(history) == steps, (stop, history.stop_reason)


def test_a_hard_budget_stops_the_run_within_a_step_and_keeps_what_was_done():
    usage = tg.Usage(tg.Budget(max_calls=5))
    llm = tg.LLM("scripted/task", transport=tg.ScriptedTransport(lambda r: "?"), cache=False, usage=usage)

    class Asker(tg.Module):
        def __init__(self):
            self.suffix = tg.parameter("", "text")

        def forward(self, text):
            return decorate_with_model(text, self.suffix)

    @tg.bundle
    def decorate_with_model(text, suffix):
        """Ask the model, then append the suffix."""
        return text + llm.complete(text).text.strip("?") + suffix

    model = Asker()
    opt = ScriptedOptimizer(model, counting_suggestions())
    history = train(model, suffix_data(), ExactMatch(), opt, batch_size=2, usage=usage, quiet=True)
    # step 1: 2 model calls for the batch, 2 to score the proposal; step 2 runs out in its batch
    assert len(history) == 1 and history.stop_reason.startswith("budget:")
    assert history.spend.calls == 5 and usage.calls == 5  # 4 by the pipeline, 1 by the optimizer
    assert model.suffix.value == history.best_values["suffix"]


def test_trainer_options_are_checked():
    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    with pytest.raises(ValueError):
        Trainer(model, ExactMatch(), opt, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        Trainer(model, ExactMatch(), opt, quiet=True).fit([])
    history = Trainer(model, ExactMatch(), opt, validation=0.5, seed=1, quiet=True).fit(suffix_data(n=4))
    assert history.initial_score is not None


def test_training_does_not_depend_on_the_executors_concurrency():
    histories = []
    for concurrency in (1, 8):
        model = Suffixer()
        opt = ScriptedOptimizer(model, counting_suggestions())
        history = train(
            model, suffix_data(n=8), ExactMatch(), opt, batch_size=4, epochs=2, concurrency=concurrency, quiet=True
        )
        histories.append((history.to_json(), opt.seen, model.state_dict()))
    assert histories[0] == histories[1]


def test_the_same_candidate_is_scored_once():
    runs = []

    class Counting(Suffixer):
        def forward(self, text):
            runs.append(self.suffix.value)
            return super().forward(text)

    model = Counting()
    opt = ScriptedOptimizer(model, always({"suffix": "?"}))  # three samples, one candidate
    train(model, suffix_data(n=2), ExactMatch(), opt, batch_size=2, search=3, quiet=True)
    assert runs.count("") == 2 and runs.count("?") == 2  # the batch once each, not once per sample


def test_outputs_that_are_not_nodes_reach_no_parameter():
    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    plain = lambda text: text + model.suffix.value  # noqa: E731
    history = train(plain, suffix_data(n=2), ExactMatch(), opt, batch_size=2, quiet=True)
    assert history.steps[0].status == "no_proposal" and "reached no parameter" in history.steps[0].reason
    assert opt.seen == []


def test_an_aggregation_can_pass_keywords_to_backward():
    got = {}

    class Keywords(ScriptedOptimizer):
        def backward(self, output, feedback="", **kwargs):
            got.update(kwargs)
            super().backward(output, feedback)

    model = Suffixer()
    opt = Keywords(model, always({"suffix": "!"}))
    train(model, suffix_data(n=2), ExactMatch(), opt, aggregate=lambda rs: (*join_batch(rs), {"loss": 1.5}), quiet=True)
    assert got == {"loss": 1.5} and model.suffix.value == "!"


def test_the_progress_bar_shows_scores_calls_and_cost(capsys):
    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    train(model, suffix_data(n=4), ExactMatch(), opt, batch_size=2)
    err = capsys.readouterr().err
    assert "train" in err and "2/2" in err
    assert all(f"{key}=" in err for key in ("batch", "best", "calls", "cost"))
