"""A state proposed from again gets fresh samples, not the answers it already got."""

from __future__ import annotations

from train_helpers import ScriptedOptimizer, Suffixer

from tracegrad.train import ExactMatch, train


def test_after_a_rejected_step_the_next_proposal_is_another_sample():
    seen: list[int] = []

    def suggest(opt, sample, texts):
        seen.append(sample)
        return {"suffix": "?"}  # always worse than "!": every step is rejected

    model = Suffixer("!")
    data = [("ab", "ab!"), ("cd", "cd#")]  # "!" gets one of two right
    history = train(model, data, ExactMatch(), ScriptedOptimizer(model, suggest), batch_size=2, epochs=3, quiet=True)
    assert [r.status for r in history] == ["rejected"] * 3
    assert seen == [0, 1, 2]
