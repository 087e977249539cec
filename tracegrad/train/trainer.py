"""``train`` and ``Trainer``: minibatch optimization of a workflow over a dataset.

Each epoch visits the training set in batches (shuffled from the seed, the same order in
every process). Each batch is one step (see ``tracegrad.train.step``): the batch's
feedback is aggregated into one backward, the optimizer proposes, and a proposal is
kept only if it does not lower the score -- on the batch, then on the validation set
when there is one; a rejected proposal changes nothing, optimizer state included.
After every step the run directory (if any) gets an atomic checkpoint, so
``resume=True`` continues a stopped or killed run where it was.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from typing import Any

from tracegrad.errors import TracegradError
from tracegrad.events import Dispatcher, Subscriber
from tracegrad.nodes.module import Module
from tracegrad.train.aggregate import Aggregate, join_batch
from tracegrad.train.announce import Announcer
from tracegrad.train.cache import EvaluationCache, version_of
from tracegrad.train.data import Dataset, Example, as_examples, batch_indices, split
from tracegrad.train.evaluate import Model, usage_ledgers
from tracegrad.train.executors import LocalExecutor, as_executor, keeps_traces
from tracegrad.train.guides import as_guide
from tracegrad.train.history import History, StepRecord
from tracegrad.train.progress import ProgressBar
from tracegrad.train.run import TRACE, EventLog, RunDir
from tracegrad.train.search import Candidate, Pool, Strategy, as_strategy
from tracegrad.train.step import StepRunner
from tracegrad.train.stopping import RunState, Stop, as_stop


class Trainer:
    """Optimizes ``model``'s parameters with ``optimizer`` over a dataset, scored by ``guide``.

    Args:
        model: the workflow, a callable ``input -> output`` (e.g. a ``Module``).
        guide: a ``Guide`` or a function ``(example, output) -> (score, feedback)``.
        optimizer: an optimizer over the parameters to train (``OptoPrime``, ``Hybrid`` ...).
        validation: a validation set, or a fraction of the dataset to hold out (split
            with ``seed``); proposals must not lower its score. None: the batch decides.
        batch_size: examples per step.
        epochs: passes over the training set.
        shuffle: shuffle each epoch (from ``seed`` and the epoch number).
        seed: the seed of shuffling, the validation split and the search.
        stop: a stop condition (``StopAfter(steps=10) | TargetScore(1.0)``).
        search: a search ``Strategy`` (``BestOfN``, ``Beam``, ``Pareto``) or a number
            of proposals per step (best-of-N); default ``BestOfN(1)``.
        aggregate: ``(results) -> (output node, feedback[, backward kwargs])`` for a
            batch (default ``join_batch``: one traced operation over the outputs, one
            feedback text).
        executor: runs the examples (default ``LocalExecutor(concurrency)``); the traces
            feedback goes through are recorded on it if its results keep them
            (``in_process`` or ``returns_traces``), else on local threads.
        concurrency: threads of the default executors.
        cache: use an evaluation cache (True), not (False), or this ``EvaluationCache``.
        usage: the ``Usage`` ledger(s) of the pipeline's model clients, so that the
            run's cost counts them (the guide's and the optimizer's are counted anyway).
        run_dir: a directory for the checkpoint, the parameters and ``log.jsonl``.
        resume: continue the run in ``run_dir`` (or in this directory) when it holds a
            checkpoint; without ``resume`` a ``run_dir`` holding one is refused.
        quiet: no progress bar (for scripts); without it, a bar on stderr shows the
            steps, the scores, the cost and what the step in progress is doing.
        callbacks: subscribers to the run's events (``tracegrad.events``): callables
            taking an event, called in order after the run log and the progress bar.
            One that raises is logged once and the run goes on.
        on_step: called with each ``StepRecord`` after it is checkpointed.
        on_epoch: called with ``(epoch, history)`` after each finished epoch.

    The run's events go through the optimizer's dispatcher (``optimizer.events``), so
    the optimizer's own subscribers see them too; ``log.jsonl`` is written from them.
    Each step's trace (the batch's aggregated output) is saved to ``trace.json`` in
    ``run_dir`` for the run report.
    """

    def __init__(
        self,
        model: Model,
        guide: Any,
        optimizer: Any,
        *,
        validation: Dataset | float | None = None,
        batch_size: int = 4,
        epochs: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        stop: Stop | None = None,
        search: Strategy | int | None = None,
        aggregate: Aggregate | None = None,
        executor: Any = None,
        concurrency: int = 8,
        cache: bool | EvaluationCache = True,
        usage: Any = None,
        run_dir: str | os.PathLike[str] | None = None,
        resume: bool | str | os.PathLike[str] = False,
        quiet: bool = False,
        callbacks: Iterable[Subscriber] = (),
        on_step: Callable[[StepRecord], None] | None = None,
        on_epoch: Callable[[int, History], None] | None = None,
    ) -> None:
        if batch_size < 1 or epochs < 0:
            raise ValueError("batch_size must be at least 1 and epochs at least 0")
        if not isinstance(resume, bool):
            if run_dir is not None and os.path.abspath(run_dir) != os.path.abspath(resume):
                raise ValueError("resume= names another directory than run_dir=")
            run_dir, resume = resume, True
        self.model = model
        self.guide = as_guide(guide)
        self.optimizer = optimizer
        self.validation_arg = validation
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.seed = seed
        self.stop = as_stop(stop)
        self.strategy = as_strategy(search)
        self.aggregate: Aggregate = aggregate or join_batch
        self.executor_arg = executor
        self.concurrency = concurrency
        self.cache = cache if isinstance(cache, EvaluationCache) else (EvaluationCache() if cache else None)
        self.ledgers = usage_ledgers(usage, self.guide)
        self.run_dir = RunDir(run_dir) if run_dir is not None else None
        self.resume = resume
        self.quiet = quiet
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not callable(callback):
                raise TracegradError(f"callbacks must be callables taking an event, not {callback!r}")
        events = getattr(optimizer, "events", None)
        self.events: Dispatcher = events if isinstance(events, Dispatcher) else Dispatcher()
        self.on_step = on_step
        self.on_epoch = on_epoch
        self.history = History()
        self.pool = Pool()
        self.rng = random.Random(f"tracegrad-search:{seed}")
        self.train_set: list[Example] = []
        self.validation: list[Example] | None = None
        self.executor: Any = None
        self.trace_executor: Any = None
        self.runner = StepRunner(self)
        self.announce = Announcer(self)
        self.position = (0, 0)

    # -- the run -------------------------------------------------------------------------
    def fit(self, dataset: Dataset) -> History:
        """Train on ``dataset``; returns the run's ``History`` (the parameters end as the
        best candidate's, see ``Strategy.final``)."""
        self.train_set, self.validation = self._datasets(dataset)
        if not self.train_set:
            raise ValueError("the training set is empty")
        self.history, self.pool = History(), Pool()  # a fit is one run (resuming reloads them)
        self.rng = random.Random(f"tracegrad-search:{self.seed}")
        self.executor, owned = as_executor(self.executor_arg, self.concurrency)
        local = keeps_traces(self.executor)
        self.trace_executor = self.executor if local else LocalExecutor(self.concurrency)
        self.announce.started = False
        subscribed = self._subscribe()
        try:
            try:
                epoch, batch = self._start()
                reason = self._loop(epoch, batch)
            except BaseException as exc:
                self.announce.failed(exc)
                raise
            self._finish(reason)
        finally:
            for unsubscribe in subscribed:
                unsubscribe()
            if owned:
                self.executor.close()
            if not local:
                self.trace_executor.close()
            if self.run_dir is not None:
                self.run_dir.close()
        return self.history

    def _subscribe(self) -> list[Callable[[], None]]:
        """Subscribe the run log, the progress bar and the callbacks, in that order; the
        functions that unsubscribe them."""
        subscribed = []
        if self.run_dir is not None:
            subscribed.append(self.events.subscribe(EventLog(self.run_dir.log), strict=True))
        if not self.quiet:
            bar = ProgressBar()
            subscribed += [bar.close, self.events.subscribe(bar)]
        return subscribed + [self.events.subscribe(callback) for callback in self.callbacks]

    def _loop(self, epoch: int, batch: int) -> str:
        from tracegrad.llm.errors import BudgetExceeded

        while epoch < self.epochs:
            plan = self._plan(epoch)
            while batch < len(plan):
                reason = self._should_stop(epoch)
                if reason:
                    return reason
                try:
                    record = self.runner.run(len(self.history) + 1, epoch, batch, plan[batch])
                except BudgetExceeded as exc:
                    self.announce.budget_exhausted(exc)
                    return f"budget: {exc}"
                self.history.steps.append(record)
                self.history.spend = self.history.spend + record.spend
                self._note_best()
                batch += 1
                if self.run_dir is not None:
                    self.runner.save_trace(self.run_dir.path / TRACE)
                self.announce.step_ended(record)
                self._checkpoint(*((epoch + 1, 0) if batch == len(plan) else (epoch, batch)))
                if self.on_step is not None:
                    self.on_step(record)
            if self.on_epoch is not None:
                self.on_epoch(epoch, self.history)
            epoch, batch = epoch + 1, 0
        return self._should_stop(epoch) or f"{self.epochs} epochs"

    def _plan(self, epoch: int) -> list[list[int]]:
        return batch_indices(len(self.train_set), self.batch_size, epoch, seed=self.seed, shuffle=self.shuffle)

    def _should_stop(self, epoch: int) -> str | None:
        if self.stop is None:
            return None
        return self.stop(self.state(epoch))

    def state(self, epoch: int = 0) -> RunState:
        """What stop conditions read about the run so far."""
        history = self.history
        current = self.pool[self.pool.current] if len(self.pool) else None
        if self.validation and current is not None:
            score = current.score
        else:
            score = history.steps[-1].score if history.steps else None
        return RunState(len(history), epoch, history.spend, score, history.best_score, history)

    def _note_best(self) -> None:
        best = self.strategy.final(self.pool)
        self.history.best_version = best.version
        self.history.best_score = best.score if best.score is not None else self.history.steps[-1].score

    # -- start, resume, finish -------------------------------------------------------------
    def _datasets(self, dataset: Dataset) -> tuple[list[Example], list[Example] | None]:
        examples = as_examples(dataset)
        val = self.validation_arg
        if val is None:
            return examples, None
        if isinstance(val, float) and not isinstance(val, bool):
            return split(examples, val, seed=self.seed)
        return examples, as_examples(val)

    def _config(self) -> dict[str, Any]:
        return {
            "train_size": len(self.train_set),
            "validation_size": len(self.validation) if self.validation else 0,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "search": repr(self.strategy),
            "parameters": sorted(self.optimizer.names),
        }

    def _start(self) -> tuple[int, int]:
        run = self.run_dir
        if run is not None:
            run.clean()
            if run.has_checkpoint():
                if not self.resume:
                    raise TracegradError(f"{run.path} holds a run; pass resume=True to continue it, or another run_dir")
                return self._restore(run.read())
            run.rewind(None)  # what a run killed before its first checkpoint wrote
        values = self.runner.values()
        version = version_of(values)
        start = Candidate(0, version, values, optimizer_state=self.optimizer.state_dict())
        history = self.history
        history.initial_version = history.best_version = version
        history.versions[version] = values
        if self.validation:
            ev = self.runner.score(self.validation, split="validation")
            start.score = history.initial_score = history.best_score = ev.score
            start.scores = {f"val:{r.index}": r.score for r in ev.results}
            history.spend = history.spend + ev.spend
        self.pool.add(start)
        self.pool.current = start.id
        self.position = (0, 0)
        self.announce.run_started(version, start.score, resumed=False)
        self._checkpoint(0, 0)
        return 0, 0

    def _restore(self, data: dict[str, Any]) -> tuple[int, int]:
        saved, config = data.get("config", {}), self._config()
        if saved != config:
            changed = sorted(k for k in config if saved.get(k) != config[k])
            raise TracegradError(f"the run in {self.run_dir.path} was made with other settings: {changed}")  # type: ignore[union-attr]
        pool, history, rng_state, position = self._parsed(data)  # all read before anything changes
        previous = self.runner.values()
        self.runner.set_values(data["parameters"])  # checked before anything is assigned
        try:
            self.optimizer.load_state_dict(data["optimizer"])
        except BaseException:
            self.runner.set_values(previous)
            raise
        self.pool, self.history, self.position = pool, history, position
        self.history.stop_reason = None
        self.rng.setstate(rng_state)
        entries = self.run_dir.rewind(data)  # type: ignore[union-attr]
        if self.cache is not None:
            self.cache.load_json(entries)
        current = self.pool[self.pool.current] if len(self.pool) else None
        self.announce.run_started(version_of(data["parameters"]), current.score if current else None, resumed=True)
        return self.position

    def _parsed(self, data: dict[str, Any]) -> tuple[Pool, History, tuple[Any, ...], tuple[int, int]]:
        """The pool, history, random state and position of a checkpoint, or a
        ``TracegradError`` in one sentence when any of them is damaged."""
        try:
            pool = Pool.from_json(data["pool"])
            history = History.from_json(data["history"])
            version, internal, gauss = data["rng"]
            rng_state = (version, tuple(internal), gauss)
            random.Random().setstate(rng_state)  # tried on a scratch generator
            position = (int(data["position"]["epoch"]), int(data["position"]["batch"]))
        except TracegradError:
            raise
        except Exception as exc:
            where = self.run_dir.path if self.run_dir is not None else "the run directory"
            raise TracegradError(
                f"the checkpoint in {where} is damaged ({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
        return pool, history, rng_state, position

    def _finish(self, reason: str) -> None:
        final = self.strategy.final(self.pool)
        self.runner.hold(final)
        history = self.history
        history.best_version = final.version
        if final.score is not None:
            history.best_score = final.score
        history.stop_reason = reason
        # the final state is on disk before RunEnded (a subscriber may report on it), and
        # checkpointed again with the log's stop line, so resuming keeps that line
        self._checkpoint(*self.position)
        if self.events:
            self.announce.run_ended(reason)
            self._checkpoint(*self.position)

    # -- files --------------------------------------------------------------
    def _checkpoint(self, epoch: int, batch: int) -> None:
        run = self.run_dir
        self.position = (epoch, batch)
        if run is None:
            return
        state = {
            "step": len(self.history),
            "position": {"epoch": epoch, "batch": batch},
            "config": self._config(),
            "parameters": self.runner.values(),
            "optimizer": self.optimizer.state_dict(),
            "pool": self.pool.to_json(),
            "rng": list(self.rng.getstate()),
            "history": self.history.to_json(),
        }
        run.write(state, self.cache.drain() if self.cache is not None else [])
        module = self.model if isinstance(self.model, Module) else None
        self.optimizer.save(run.parameters_path, module)


def train(model: Model, dataset: Dataset, guide: Any, optimizer: Any, **options: Any) -> History:
    """Train ``model`` on ``dataset``: ``Trainer(model, guide, optimizer, **options).fit(dataset)``.

    See ``Trainer`` for the options (validation, batch_size, epochs, stop, search,
    run_dir, resume, quiet ...).
    """
    return Trainer(model, guide, optimizer, **options).fit(dataset)


__all__ = ["Trainer", "train"]
