"""``OptoPrimeMulti``: several candidate proposals per step, one of them kept.

Each step shows the model the same problem as ``OptoPrime`` ``candidates`` times at
once (threads for ``propose``, tasks for ``apropose``), each at its own temperature
and, with ``diversity``, asked after the first to try another way; then one candidate
is kept -- by a model judging them, by majority (identical suggestions agree), by the
user's own check, or by the user's function (see ``selection``). Like every
optimizer, ``propose()`` changes nothing; the step's one report is the kept
candidate's, with the cost of all of them and their summaries in
``details["candidates"]``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tracegrad._text import literal, truncate
from tracegrad.llm.settings import checked_keywords
from tracegrad.nodes.module import Module
from tracegrad.optimizers.base import Proposal
from tracegrad.optimizers.llm.optimizer import _Ask
from tracegrad.optimizers.llm.optoprime import OptoPrime
from tracegrad.optimizers.llm.selection import Choice, by_function, by_judge, by_majority, by_score
from tracegrad.optimizers.llm.suggestions import ReplyCheck
from tracegrad.trace import ParameterNode

if TYPE_CHECKING:
    from tracegrad.llm.client import LLM

#: The selection rules by name (a function ``candidates -> index`` is the fourth).
SELECTIONS = ("judge", "majority", "score")

DIVERSITY = (
    "This is candidate {number} of {total}: propose a different update from the most obvious "
    "one, addressing the feedback in another way."
)


class OptoPrimeMulti(OptoPrime):
    """``OptoPrime`` that samples several proposals per step and keeps the best one.

    Args:
        parameters: a ``Module``, a list of parameters or one parameter.
        llm: the client the candidates are asked with (see ``LLMOptimizer``).
        candidates: how many proposals a step samples (default 3, or one per given
            temperature).
        temperatures: the temperature of each candidate (default: the ``temperature``
            setting for all, else evenly from 1.0 down to 0.0).
        diversity: ask each candidate after the first to differ from the obvious
            update (True: the default instruction; a string: your own, which may use
            ``{number}`` and ``{total}``).
        select: ``"judge"`` (a model picks one; the default), ``"majority"`` (the values
            suggested most often), or a function ``candidates -> index`` given the
            usable candidates (``Proposal``\\ s).
        score: the user's check, ``score() -> float`` (higher is better), run with each
            candidate's values assigned in turn (and the old ones put back): the best
            one is kept. Given, it decides (``select`` then must be left out).
        judge: the client of the judge (default: ``llm``).
        concurrency: how many candidates are asked at once (default: all).
        options: the other keywords of ``LLMOptimizer`` (``memory_size``,
            ``temperature``, ``max_tokens``, ``extra``, ...).
    """

    _shared_on_copy = frozenset({"_llm", "count_tokens", "judge", "select", "score"})

    @checked_keywords()
    def __init__(
        self,
        parameters: ParameterNode | Iterable[ParameterNode] | Module,
        llm: LLM | None = None,
        *,
        candidates: int | None = None,
        temperatures: Sequence[float] | None = None,
        diversity: bool | str = False,
        select: str | Callable[[list[Proposal]], int] | None = None,
        score: Callable[[], float] | None = None,
        judge: LLM | None = None,
        concurrency: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(parameters, llm, **options)
        count = candidates if candidates is not None else len(temperatures) if temperatures else 3
        if count < 1:
            raise ValueError("candidates must be at least 1")
        if temperatures is not None and len(temperatures) != count:
            raise ValueError(f"give one temperature per candidate: {len(temperatures)} for {count} candidates")
        if score is not None and select not in (None, "score"):
            raise ValueError("give either select or score: a score decides which candidate is kept")
        select = "score" if score is not None else select or "judge"
        if isinstance(select, str) and select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS} or a function candidates -> index, got {select!r}")
        if select == "score" and score is None:
            raise ValueError('select="score" needs score=, the check to run on each candidate')
        self.candidates = count
        self.temperatures = list(temperatures) if temperatures is not None else self._default_temperatures(count)
        self.diversity = DIVERSITY if diversity is True else diversity or ""
        self.select = select
        self.score = score
        self.judge = judge
        self.concurrency = max(1, concurrency or count)

    def _default_temperatures(self, count: int) -> list[float | None]:
        if "temperature" in self.call_settings or count == 1:
            return [self.call_settings.get("temperature")] * count
        return [1.0 - i / (count - 1) for i in range(count)]

    # -- propose ------------------------------------------------------------------------
    def propose(self, *, sample: int = 0) -> Proposal:
        """Ask for every candidate at once (threads), keep one; changes nothing."""
        started = time.perf_counter()
        ask = self._ask()
        if ask is None:
            return self._idle_proposal()
        asks = [self._candidate_ask(ask, k) for k in range(self.candidates)]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tracegrad-candidate") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self._candidate, asks, k, sample, started)
                for k in range(self.candidates)
            ]
            proposals = [f.result() for f in futures]
        return self._keep(ask, proposals)

    async def apropose(self, *, sample: int = 0) -> Proposal:
        """``propose()`` for async code: the candidates are asked concurrently."""
        started = time.perf_counter()
        ask = self._ask()
        if ask is None:
            return self._idle_proposal()
        asks = [self._candidate_ask(ask, k) for k in range(self.candidates)]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(k: int) -> Proposal:
            async with gate:
                return await self._aask_model(asks[k], self._sample_of(k, sample), started, **self._settings_of(k))

        proposals = list(await asyncio.gather(*(one(k) for k in range(self.candidates))))
        return await asyncio.to_thread(self._keep, ask, proposals)

    def _candidate(self, asks: list[_Ask], k: int, sample: int, started: float) -> Proposal:
        """Candidate ``k``'s proposal (one structured call)."""
        return self._ask_model(asks[k], self._sample_of(k, sample), started, **self._settings_of(k))

    def _sample_of(self, k: int, sample: int) -> int:
        """Candidate ``k``'s own sample index, so that cached candidates never repeat
        each other (nor those of another ``sample``)."""
        return sample * self.candidates + k

    def _settings_of(self, k: int) -> dict[str, Any]:
        temperature = self.temperatures[k]
        return {} if temperature is None else {"temperature": temperature}

    def _candidate_ask(self, ask: _Ask, k: int) -> _Ask:
        """Candidate ``k``'s request: the step's, with the diversity instruction after the
        first; each candidate gets its own reply check."""
        messages = [dict(m) for m in ask.messages]
        if self.diversity and k > 0:
            note = self.diversity.format(number=k + 1, total=self.candidates)
            messages[-1]["content"] = f"{messages[-1]['content']}\n\n{note}"
        return _Ask(ask.prompt, messages, ReplyCheck(ask.prompt.variables))

    # -- select ---------------------------------------------------------------------------
    def _keep(self, ask: _Ask, proposals: list[Proposal]) -> Proposal:
        """The kept candidate's proposal, its report carrying the whole step's cost and
        the candidates' summaries."""
        usable = [i for i, p in enumerate(proposals) if p.status in ("updated", "unchanged")]
        choice = self._choose(ask, [proposals[i] for i in usable]) if usable else Choice(0, "none usable")
        kept = usable[choice.index] if usable else 0
        chosen = proposals[kept]
        report = chosen.report
        judged = choice.completion
        spent = [p.report for p in proposals]
        report.calls = sum(r.calls for r in spent) + (judged.usage.calls if judged else 0)
        report.prompt_tokens = sum(r.prompt_tokens for r in spent) + (judged.usage.prompt_tokens if judged else 0)
        report.completion_tokens = sum(r.completion_tokens for r in spent) + (
            judged.usage.completion_tokens if judged else 0
        )
        report.cached_prompt_tokens = sum(r.cached_prompt_tokens for r in spent) + (
            judged.usage.cached_prompt_tokens if judged else 0
        )
        costs = [r.cost_usd for r in spent] + ([judged.cost_usd] if judged else [])
        report.cost_usd = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
        report.attempts = sum(r.attempts for r in spent)
        report.details.update(
            candidates=[self._summary(k, p) for k, p in enumerate(proposals)],
            selected=kept,
            selection=choice.method,
            **choice.notes,
        )
        return chosen

    def _choose(self, ask: _Ask, usable: list[Proposal]) -> Choice:
        if callable(self.select):
            return by_function(usable, self.select)
        if self.select == "score":
            assert self.score is not None
            return by_score(self, usable, self.score)
        if self.select == "majority" or len(usable) == 1:
            return by_majority(self, usable)
        judge = self.judge or self.llm
        return by_judge(self, usable, judge, ask.prompt.text, max_tokens=self._reply_tokens(ask))

    def _summary(self, k: int, proposal: Proposal) -> dict[str, Any]:
        report = proposal.report
        return {
            "candidate": k,
            "temperature": self.temperatures[k],
            "status": report.status,
            "values": {n: truncate(literal(v), 200) for n, v in proposal.values.items()},
            "reasoning": truncate(report.reasoning, 300),
            "reason": report.reason,
            "cost_usd": report.cost_usd,
        }


__all__ = ["DIVERSITY", "SELECTIONS", "OptoPrimeMulti"]
