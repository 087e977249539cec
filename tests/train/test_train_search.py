"""Candidate search: several proposals from one state, the best kept, only it committed."""

from __future__ import annotations

import asyncio
import json
import random
import threading

from train_helpers import ScriptedOptimizer, Suffixer, state_json, suffix_data

import tracegrad as tg
from tracegrad.train import Beam, BestOfN, ExactMatch, Pareto, Predicate, train
from tracegrad.train.search import Candidate, Pool, pareto_front

BY_SAMPLE = ["?", "!", "#"]


def by_sample(opt, sample, texts):
    return {"suffix": BY_SAMPLE[sample % len(BY_SAMPLE)]}


def test_best_of_n_keeps_the_best_proposal_and_commits_only_it():
    model = Suffixer()
    made_at = []

    def suggest(opt, sample, texts):
        made_at.append(opt.step_count)
        return by_sample(opt, sample, texts)

    opt = ScriptedOptimizer(model, suggest)
    history = train(model, suffix_data(n=2), ExactMatch(), opt, batch_size=2, search=3, quiet=True)
    (step,) = history.steps
    assert made_at == [0, 0, 0]  # every proposal from the same state, before any commit
    assert [p.outcome for p in step.proposals] == ["dropped", "chosen", "dropped"]
    assert [p.batch_score for p in step.proposals] == [0.0, 1.0, 0.0]
    assert model.suffix.value == "!"
    assert opt.step_count == 1 and opt.memory == [{"suffix": "!"}]
    assert step.spend.calls == 3  # each proposal's call is counted


def test_among_equals_the_earliest_sample_wins():
    model = Suffixer()
    opt = ScriptedOptimizer(model, lambda opt, sample, texts: {"suffix": ["?!", "!", "!!"][sample]})
    ends_well = Predicate(lambda out: out.endswith("!"), "End with '!'.")
    history = train(model, [("ab", "")], ends_well, opt, search=BestOfN(3), quiet=True)
    assert [p.outcome for p in history.steps[0].proposals] == ["chosen", "dropped", "dropped"]
    assert model.suffix.value == "?!"


def test_validation_decides_among_proposals_that_keep_the_batch_score():
    model = Suffixer()
    opt = ScriptedOptimizer(model, lambda opt, sample, texts: {"suffix": ["!", "!!", "?"][sample]})
    val = [("x", "x!!"), ("y", "y!!")]
    batch = [("ab", ["ab!", "ab!!"]), ("cd", "cd")]
    history = train(model, batch, ExactMatch(), opt, validation=val, batch_size=2, search=BestOfN(3), quiet=True)
    (step,) = history.steps
    assert [p.outcome for p in step.proposals] == ["dropped", "chosen", "dropped"]
    # '?' loses on the batch and is never scored on validation
    assert [p.validation_score for p in step.proposals] == [0.0, 1.0, None]
    assert model.suffix.value == "!!" and step.validation_score == 1.0


def test_proposals_of_a_step_are_made_concurrently_on_threads():
    barrier = threading.Barrier(3)

    def suggest(opt, sample, texts):
        barrier.wait(timeout=10)  # only returns if all three proposals are being made at once
        return by_sample(opt, sample, texts)

    model = Suffixer()
    opt = ScriptedOptimizer(model, suggest)
    train(model, suffix_data(n=2), ExactMatch(), opt, batch_size=2, search=3, quiet=True)
    assert model.suffix.value == "!"


class AsyncOptimizer(ScriptedOptimizer):
    """Makes its proposals in ``apropose``, on one event loop."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loops = set()

    async def apropose(self, *, sample: int = 0):
        self.loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return self.propose(sample=sample)


def test_an_async_optimizer_proposes_on_one_event_loop():
    model = Suffixer()
    opt = AsyncOptimizer(model, by_sample)
    train(model, suffix_data(n=2), ExactMatch(), opt, batch_size=2, search=3, quiet=True)
    assert len(opt.loops) == 1 and len(opt.seen) == 3 and model.suffix.value == "!"


def test_best_of_n_with_an_llm_optimizer_draws_each_sample_apart():
    def answer(request):
        suffix = BY_SAMPLE[request.sample_index or 0]
        return json.dumps({"reasoning": "try", "answer": None, "suggestion": {"suffix": suffix}})

    transport = tg.ScriptedTransport(answer)
    llm = tg.LLM("scripted/optimizer", transport=transport, cache=False)
    model = Suffixer()
    opt = tg.OptoPrime(model, llm=llm)
    before = state_json(opt)
    history = train(model, suffix_data(n=2), ExactMatch(), opt, batch_size=2, search=3, quiet=True)
    assert sorted(r.sample_index or 0 for r in transport.requests) == [0, 1, 2]
    assert model.suffix.value == "!" and history.steps[0].accepted
    assert opt.step_count == 1 and state_json(opt) != before


def test_beam_keeps_the_best_few_and_ends_on_the_best():
    model = Suffixer()
    rng = random.Random(0)
    opt = ScriptedOptimizer(model, lambda opt, sample, texts: {"suffix": rng.choice(["!", "?", "#", "!!"])})
    val = suffix_data(n=3)
    strategy = Beam(width=2, samples=2)
    history = train(
        model, suffix_data(), ExactMatch(), opt, validation=val, batch_size=1, epochs=2, search=strategy, quiet=True
    )
    assert len(history) == 12
    assert model.suffix.value == "!" and history.best_score == 1.0


def test_pareto_front_counts_the_examples_each_candidate_is_best_on():
    pool = Pool()
    for scores in [
        {"val:0": 1, "val:1": 0},
        {"val:0": 0, "val:1": 1},
        {"val:0": 0.5, "val:1": 0.5},
        {"val:0": 1, "val:1": 1},
    ]:
        pool.add(Candidate(-1, "v", {}, scores=dict(scores)))
    assert pareto_front(pool) == {0: 1, 1: 1, 3: 2}
    chosen = {Pareto().select(pool, random.Random(i)).id for i in range(30)}
    assert chosen <= {0, 1, 3} and 3 in chosen


def test_pareto_search_runs_and_keeps_the_pool_bounded():
    model = Suffixer()
    opt = ScriptedOptimizer(model, by_sample)
    history = train(
        model,
        suffix_data(),
        ExactMatch(),
        opt,
        validation=suffix_data(n=2),
        batch_size=2,
        search=Pareto(samples=2, pool_size=2),
        quiet=True,
    )
    assert model.suffix.value == "!" and history.best_score == 1.0
