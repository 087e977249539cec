"""One training step: forward, one backward for the batch, proposals, scores, choice.

1. The strategy selects the candidate to start from; the parameters and the optimizer
   state are set to it.
2. The workflow runs on the batch with tracing on. If every example already succeeds
   (the batch's results may come from the evaluation cache), the step is ``skipped``:
   no optimizer call.
3. The batch's results are aggregated into one output node and one feedback
   (``Trainer(aggregate=)``), propagated with one ``backward``. If the feedback
   reaches no parameter, the step ends there (``no_proposal``).
4. ``samples`` proposals are made from that one state, none committed.
5. Each proposal is assigned, scored on the batch, and its old values put back.
   Those that do not drop below the starting candidate's batch score are scored on the
   validation set, when there is one.
6. The strategy chooses one (or none): that proposal alone is assigned and committed;
   if none is chosen, the parameters and the optimizer are exactly as before the step.

Whatever is raised in between (a spent budget), the parameters get their old values
back and nothing is committed.

The step emits its events on the trainer's dispatcher as it goes (``StepStarted``, the
``Evaluated`` of the batch, each ``Proposed`` in sample order, the ``Evaluated`` of each
proposal, ``Decided``); the trainer emits ``StepEnded`` once the step is recorded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracegrad.errors import InvalidValueError
from tracegrad.events import Decided, Evaluated, Proposed, StepStarted
from tracegrad.trace import assign
from tracegrad.train.cache import parameter_values, version_of
from tracegrad.train.evaluate import cached_results, evaluate
from tracegrad.train.history import ProposalRecord, StepRecord
from tracegrad.train.proposals import propose_all
from tracegrad.train.results import Evaluation, Spend
from tracegrad.train.search import Candidate, Scored

if TYPE_CHECKING:
    from tracegrad.train.trainer import Trainer


logger = logging.getLogger("tracegrad.train")


class StepRunner:
    """Runs steps for a trainer (see the module docstring); ``proposals`` and ``output``
    are those of the last step (its proposals in sample order, the aggregated output
    node its feedback went through, None when it had none)."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer
        self.proposals: list[Any] = []
        self.output: Any = None
        self._trace_failed = False

    # -- parameters ------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        return parameter_values(self.t.optimizer.names)

    def set_values(self, values: dict[str, Any]) -> None:
        names = self.t.optimizer.names
        assign({names[n]: names[n].kind.from_json(v) for n, v in values.items()})

    def hold(self, candidate: Candidate) -> None:
        """Make ``candidate`` the current one: its values and optimizer state."""
        pool = self.t.pool
        if candidate.id == pool.current:
            return
        old = self.values()
        self.set_values(candidate.values)
        try:
            if candidate.optimizer_state is not None:
                self.t.optimizer.load_state_dict(candidate.optimizer_state)
        except BaseException:
            self.set_values(old)
            raise
        pool.current = candidate.id

    # -- evaluations -------------------------------------------------------------------
    def score(self, examples: list[Any], *, trace: bool = False, split: str = "train") -> Evaluation:
        t = self.t
        executor = t.trace_executor if trace else t.executor
        return evaluate(
            t.model,
            examples,
            t.guide,
            executor=executor,
            cache=t.cache,
            usage=t.ledgers,
            parameters=t.optimizer,
            trace=trace,
            progress=False,
            desc=split,
        )

    def forward(self, examples: list[Any]) -> Evaluation:
        """The batch with tracing on, unless the cache shows every example succeeding."""
        t = self.t
        if t.cache is not None:
            hits = cached_results(t.model, examples, t.guide, t.cache, t.optimizer)
            if hits is not None and all(r.succeeded for r in hits):
                return Evaluation(hits, Spend(), len(hits))
        return self.score(examples, trace=True)

    # -- the step ----------------------------------------------------------------------
    def run(self, step: int, epoch: int, batch: int, indices: list[int]) -> StepRecord:
        t = self.t
        opt, pool, strategy, events = t.optimizer, t.pool, t.strategy, t.events
        self.proposals, self.output = [], None
        parent = strategy.select(pool, t.rng)
        self.hold(parent)
        parent.expansions += 1
        if events:
            events.emit(
                StepStarted(step=step, epoch=epoch, batch=batch, examples=list(indices), version=parent.version)
            )
        examples = [t.train_set[i] for i in indices]
        base = self.forward(examples)
        spend = base.spend
        self._evaluated(step, "batch", None, parent.version, base)
        parent.scores.update({f"train:{indices[r.index]}": r.score for r in base.results})
        record = StepRecord(step, epoch, batch, list(indices), "skipped", base.score, parent=parent.version)
        record.validation_score = parent.score
        record.version = parent.version
        if base.all_succeeded:
            record.reason = "every example of the batch succeeded"
            record.spend = spend
            return record

        opt.zero_feedback()
        output, feedback, *more = t.aggregate(base.results)
        self.output = output
        opt.backward(output, feedback, **(more[0] if more else {}))
        if not any(p.feedback for p in opt.parameters):
            record.status = "no_proposal"
            record.reason = (
                "the feedback reached no parameter: the outputs do not depend on the optimizer's parameters "
                "(does the workflow return its traced output node?)"
            )
            record.spend = spend
            return record
        # a candidate expanded again gets fresh draws, not the answers it got before
        first = (parent.expansions - 1) * strategy.samples
        proposals = self.proposals = propose_all(opt, strategy.samples, first)
        for sample, p in enumerate(proposals):
            spend = spend + Spend.of(p.report)
            if events:
                events.emit(Proposed.of(p, step=step, sample=sample))
        old = self.values()
        scored: list[Scored] = []
        records: list[ProposalRecord] = []
        committed = False
        try:
            for sample, proposal in enumerate(proposals):
                rec = _proposal_record(sample, proposal)
                records.append(rec)
                if proposal.report.status not in ("updated", "unchanged") or not proposal.values:
                    continue
                try:
                    opt.assign(proposal)
                except InvalidValueError as exc:
                    rec.outcome, rec.reason = "invalid", str(exc)
                    continue
                values = self.values()
                if values == old:
                    rec.outcome, rec.reason = "unchanged", "the proposed values are the current ones"
                    continue
                rec.version = version_of(values)
                t.history.versions.setdefault(rec.version, values)
                ev = self.score(examples)
                spend = spend + ev.spend
                self.set_values(old)
                self._evaluated(step, "candidate", sample, rec.version, ev)
                rec.outcome, rec.batch_score = "dropped", ev.score
                keyed = {f"train:{indices[r.index]}": r.score for r in ev.results}
                scored.append(Scored(sample, rec.version, values, ev.score, keyed))
            screened = [s for s in scored if s.batch_score >= base.score]
            for s in scored:
                if s not in screened:
                    records[s.sample].reason = f"batch score {s.batch_score:.4g} < {base.score:.4g}"
            if t.validation:
                for s in screened:
                    self.set_values(s.values)
                    ev = self.score(t.validation, split="validation")
                    spend = spend + ev.spend
                    self.set_values(old)
                    self._evaluated(step, "validation", s.sample, s.version, ev)
                    s.score = ev.score
                    s.scores = {f"val:{r.index}": r.score for r in ev.results}
                    records[s.sample].validation_score = ev.score
                    if parent.score is not None and ev.score < parent.score:
                        records[s.sample].reason = f"validation score {ev.score:.4g} < {parent.score:.4g}"
            eligible = strategy.eligible(parent, screened)
            chosen = strategy.choose(parent, eligible)
            admitted = strategy.admit(pool, parent, eligible, chosen)
            parent_state = opt.state_dict()
            if chosen is not None:
                proposal = proposals[chosen.sample]
                opt.assign(proposal)
                opt.commit(proposal)
                committed = True
            for s in admitted:
                child = pool.add(
                    Candidate(
                        -1,
                        s.version,
                        s.values,
                        parent=parent.id,
                        step=step,
                        score=s.score,
                        batch_score=s.batch_score,
                        scores={**s.batch_scores, **s.scores},
                        optimizer_state=opt.state_dict() if s is chosen else parent_state,
                    )
                )
                if s is chosen:
                    pool.current = child.id
                if s is not chosen:
                    records[s.sample].outcome = "admitted"
        finally:
            if not committed:
                self.set_values(old)
        if chosen is not None:
            records[chosen.sample].outcome = "chosen"
            records[chosen.sample].reason = ""
            record.status, record.accepted = "accepted", True
            record.version = chosen.version
            record.candidate_batch_score, record.candidate_validation_score = chosen.batch_score, chosen.score
            if chosen.score is not None:
                record.validation_score = chosen.score
        else:
            record.status = "rejected" if scored else "no_proposal"
            best = max(scored, key=lambda s: (s.rank, -s.sample), default=None)
            if best is not None:
                record.candidate_batch_score, record.candidate_validation_score = best.batch_score, best.score
            record.reason = "no proposal kept its score" if scored else "no new values were proposed"
        strategy.prune(pool)
        record.proposals = records
        record.spend = spend
        if events:
            events.emit(_decision(record, chosen))
        return record

    def _evaluated(self, step: int, split: str, sample: int | None, version: str | None, ev: Evaluation) -> None:
        events = self.t.events
        if events:
            events.emit(
                Evaluated(
                    step=step,
                    split=split,
                    sample=sample,
                    version=version or "",
                    score=ev.score,
                    examples=len(ev.results),
                    spend=ev.spend.to_json(),
                )
            )

    def save_trace(self, path: Path) -> Path | None:
        """Save the last step's trace to ``path`` for the run report, atomically (None when
        the step had no trace). A failure is logged (once a run) and never fails the step."""
        if self.output is None:
            return None
        try:
            from tracegrad.visualize import save_trace

            return save_trace(self.output, path, parameters=self.t.optimizer.parameters)
        except Exception:
            if not self._trace_failed:
                self._trace_failed = True
                logger.warning("the step's trace could not be saved to %s", path, exc_info=True)
            return None


def _decision(record: StepRecord, chosen: Scored | None) -> Decided:
    """The ``Decided`` event of a step that made proposals."""
    if chosen is not None:
        reason = (
            f"proposal {chosen.sample} scored {chosen.batch_score:.4g} on the batch (from {record.batch_score:.4g})"
        )
        if chosen.score is not None:
            reason += f" and {chosen.score:.4g} on the validation set"
        score = chosen.score if chosen.score is not None else chosen.batch_score
        return Decided(
            step=record.step, accepted=True, reason=reason, sample=chosen.sample, version=chosen.version, score=score
        )
    why = [f"proposal {p.sample}: {p.reason}" for p in record.proposals if p.reason]
    reason = f"{record.reason} ({'; '.join(why)})" if why else record.reason
    return Decided(step=record.step, accepted=False, reason=reason)


def _proposal_record(sample: int, proposal: Any) -> ProposalRecord:
    report = proposal.report
    outcome = "unchanged" if report.status not in ("updated", "unchanged") or not proposal.values else "pending"
    return ProposalRecord(
        sample,
        report.status,
        outcome,
        calls=report.calls,
        prompt_tokens=report.prompt_tokens,
        completion_tokens=report.completion_tokens,
        cost_usd=float(report.cost_usd or 0.0),
    )


__all__ = ["StepRunner"]
