"""``LLMOptimizer``: the base of the optimizers that ask a model for new values.

A subclass decides what the model is shown (``_prompt``); the base does the rest of a
proposal: one structured call to the client for ``{reasoning, answer, suggestion}``,
whose check (``ReplyCheck``) validates each suggested value against its parameter's
kind, so that the client asks again with the reasons when a reply is unusable (at most
``max_attempts`` replies a step). ``propose()`` changes nothing; applying the proposal
assigns the accepted values all-or-nothing and remembers the values shown and their
feedback. A malformed reply never changes a parameter; only errors of the model call
itself (budget, network) are raised.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracegrad._text import literal
from tracegrad.errors import TracegradError
from tracegrad.llm.errors import StructuredOutputError
from tracegrad.llm.settings import PROVIDER_HINT, SAMPLING, checked_keywords, merged, sampling_settings
from tracegrad.llm.structured import REPAIR_TURN_CHARS
from tracegrad.llm.tokens import TokenCounter, estimate_tokens, tokens_for_chars
from tracegrad.nodes.module import Module
from tracegrad.optimizers.base import Optimizer, ParameterUpdate, Proposal
from tracegrad.optimizers.llm.memory import Memory, checked_memory, checked_repeat
from tracegrad.optimizers.llm.problem import Problem
from tracegrad.optimizers.llm.render import render_problem
from tracegrad.optimizers.llm.suggestions import ReplyCheck, reply_type
from tracegrad.trace import ParameterNode

if TYPE_CHECKING:
    from tracegrad.llm.client import LLM
    from tracegrad.llm.request import Completion
    from tracegrad.llm.usage import CostEstimate


#: The bounds of the reply tokens a step asks for when no ``max_tokens`` is set; within
#: them, the reasoning's room plus four times each variable's current value (at least
#: ``VARIABLE_REPLY_TOKENS``): a rewrite may grow, a runaway reply stops early.
MIN_REPLY_TOKENS, MAX_REPLY_TOKENS = 512, 4096
REASONING_REPLY_TOKENS, VARIABLE_REPLY_TOKENS = 256, 128
#: The fewest prompt tokens a problem may be squeezed into and still say something.
MIN_PROBLEM_TOKENS = 256
#: Prompt tokens kept free for a repair turn (the rejected reply and why).
REPAIR_TOKENS = tokens_for_chars(REPAIR_TURN_CHARS)


@dataclass
class Prompt:
    """A user message and what it exposes: the variables by the names it shows them
    under, and the feedback to remember for later steps."""

    text: str
    variables: dict[str, ParameterNode]
    feedback: str

    @property
    def values(self) -> dict[str, Any]:
        """The variables' values as shown, as JSON data."""
        return {name: p.kind.to_json(p.value) for name, p in self.variables.items()}


@dataclass
class _Ask:
    """What one proposal asks the model, and the check its replies go through."""

    prompt: Prompt
    messages: list[dict[str, str]]
    check: ReplyCheck

    @functools.cached_property
    def digest(self) -> str:
        """Identifies the exact request text (computed once per proposal)."""
        return hashlib.sha256(json.dumps(self.messages, sort_keys=True).encode()).hexdigest()[:16]


class LLMOptimizer(Optimizer):
    """Base of the LLM optimizers; see the module docstring.

    Args:
        parameters: a ``Module``, a list of parameters or one parameter.
        llm: the ``tracegrad.llm.LLM`` to ask (default: ``LLM()``, configured from
            ``$TRACEGRAD_MODEL``).
        objective: the instruction at the top of the prompt (default: the subclass's).
        memory_size: how many earlier (values, feedback) pairs the prompt shows.
        max_attempts: the most replies one step asks for (repair turns included).
        prompt_tokens: bounds the prompt the optimizer writes.
        value_tokens: bounds each intermediate value, input and history entry in it.
        token_counter: a function ``text -> tokens``, or ``"model"`` for the count of the
            client's transport (the model's own tokenizer where it has one); default: a
            fast estimate.
        log_path: a JSON-lines file every applied step's report is appended to.
        temperature, top_p, max_tokens, seed, stop: sampling settings of the optimizer's
            model calls (None: the client's; ``max_tokens`` defaults to a bound sized
            from the step's variables, see ``reply_tokens``).
        extra: a provider's own parameters for the optimizer's model calls.

    An unknown keyword argument is a ``TypeError`` naming the closest valid one.
    ``call_settings`` holds what is sent with every call (the sampling settings given
    and ``extra``). A copy (``copy.deepcopy``) has its own memory and step count, the
    same parameters and the same client (see ``tracegrad.optimizers.base``); without
    ``llm=``, a client made after copying is each copy's own, with its own ledger.
    """

    system_prompt = ""
    default_objective = ""
    default_memory_size = 0
    _shared_on_copy = frozenset({"_llm", "count_tokens"})

    @checked_keywords(PROVIDER_HINT)
    def __init__(
        self,
        parameters: ParameterNode | Iterable[ParameterNode] | Module,
        llm: LLM | None = None,
        *,
        objective: str | None = None,
        memory_size: int | None = None,
        max_attempts: int = 3,
        prompt_tokens: int = 16_000,
        value_tokens: int | None = 600,
        token_counter: TokenCounter | str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(parameters, log_path=log_path)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._llm = llm  # None: the configured model, resolved at the first model call
        self.objective = objective or self.default_objective
        size = self.default_memory_size if memory_size is None else memory_size
        self.memory: deque[Memory] = deque(maxlen=max(size, 0))
        self.max_attempts = max_attempts
        self.prompt_tokens = prompt_tokens
        self.value_tokens = value_tokens
        if token_counter == "model":
            token_counter = _transport_counter(self)
        elif isinstance(token_counter, str):
            raise ValueError('token_counter must be a function or "model"')
        self.count_tokens: TokenCounter = token_counter or estimate_tokens
        room = self._problem_tokens()
        if room < MIN_PROBLEM_TOKENS:
            needed = prompt_tokens - room + MIN_PROBLEM_TOKENS
            raise ValueError(
                f"prompt_tokens={prompt_tokens} leaves {room} tokens for the problem after the fixed "
                f"instructions and the room kept for a repair turn; give at least {needed}"
            )
        sampling = sampling_settings(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, stop=stop)
        self.call_settings: dict[str, Any] = merged(sampling, extra, type(self).__name__)
        self._name_of = {p: name for name, p in self.names.items()}
        # (digest of the last applied proposal's prompt, how many applied proposals in a row had it)
        self._repeat: tuple[str, int] = ("", 0)

    @property
    def llm(self) -> LLM:
        """The client the optimizer asks (``LLM()`` from ``$TRACEGRAD_MODEL`` when none was
        given, made at the first model call: building an optimizer needs no model)."""
        if self._llm is None:
            from tracegrad.llm.client import LLM

            self._llm = LLM()
        return self._llm

    @llm.setter
    def llm(self, llm: LLM) -> None:
        self._llm = llm

    def next_messages(self) -> list[dict[str, str]] | None:
        """The exact messages the next ``propose()`` sends first (None when no parameter has
        feedback): what the model will read, for inspection. Calls no model."""
        ask = self._ask()
        return None if ask is None else ask.messages

    # -- what the model sees (subclasses) -------------------------------------------
    @abstractmethod
    def _prompt(self, parameters: Sequence[ParameterNode], budget_tokens: int) -> Prompt:
        """The user message for these parameters (all have feedback), within the budget."""

    def _render(self, problem: Problem, budget_tokens: int) -> str:
        """The problem as prompt text, with the remembered steps, within the budget."""
        return render_problem(
            problem,
            history=self.history(),
            budget_tokens=budget_tokens,
            value_tokens=self.value_tokens,
            counter=self.count_tokens,
        )

    def history(self) -> list[str]:
        """The remembered steps, oldest first, as prompt text."""
        return [m.render() for m in self.memory]

    def estimate_cost(self, steps: int = 1) -> CostEstimate | None:
        """Project the cost of ``steps`` more steps from the prompt the next one would send
        (one call a step; repair turns cost more), or None when no parameter has feedback."""
        ask = self._ask()
        if ask is None:
            return None
        return self.llm.estimate_cost(ask.messages, self._reply_tokens(ask), calls=steps)

    # -- propose ----------------------------------------------------------------------------
    def propose(self, *, sample: int = 0) -> Proposal:
        """Ask the model for new values (one structured call, its repair turns included);
        changes nothing. Each ``sample`` is its own draw: its requests are cached apart
        (the client's ``sample_index``, which also offsets a ``seed``), so cached calls do
        not repeat one answer. So is a step whose prompt is exactly that of the steps
        applied just before it (they changed nothing the prompt shows): it is not asked
        for the same reply again."""
        started = time.perf_counter()
        ask = self._ask()
        if ask is None:
            return self._idle_proposal()
        return self._ask_model(ask, sample, started)

    async def apropose(self, *, sample: int = 0) -> Proposal:
        """``propose()`` for async code: the model is called with ``acomplete``."""
        started = time.perf_counter()
        ask = self._ask()
        if ask is None:
            return self._idle_proposal()
        return await self._aask_model(ask, sample, started)

    def _ask_model(self, ask: _Ask, sample: int, started: float, **settings: Any) -> Proposal:
        """The proposal from one structured call for ``ask`` (``settings`` override the
        call settings)."""
        call_started = time.perf_counter()
        try:
            done = self.llm.complete(ask.messages, **{**self._call_options(ask, sample), **settings})
        except StructuredOutputError as exc:  # no usable reply: a status, not an error
            done = exc.completion
        return self._conclude(ask, done, started, time.perf_counter() - call_started)

    async def _aask_model(self, ask: _Ask, sample: int, started: float, **settings: Any) -> Proposal:
        """``_ask_model`` for async code."""
        call_started = time.perf_counter()
        try:
            done = await self.llm.acomplete(ask.messages, **{**self._call_options(ask, sample), **settings})
        except StructuredOutputError as exc:
            done = exc.completion
        return self._conclude(ask, done, started, time.perf_counter() - call_started)

    def _call_options(self, ask: _Ask, sample: int) -> dict[str, Any]:
        """The options of a proposal's one client call: the reply schema of the step's
        variables and its check,
        the repair turns ``max_attempts`` leaves, the sample, the call settings (whose
        ``extra`` parameters go as the client's ``extra``)."""
        sampling = {k: v for k, v in self.call_settings.items() if k in SAMPLING}
        extra = {k: v for k, v in self.call_settings.items() if k not in SAMPLING}
        return {
            "schema": reply_type(ask.prompt.variables),
            "check": ask.check,
            "repairs": self.max_attempts - 1,
            "sample_index": (sample + self._repeats(ask)) or None,
            "max_tokens": self._reply_tokens(ask),
            **sampling,
            **({"extra": extra} if extra else {}),
        }

    def _repeats(self, ask: _Ask) -> int:
        """How many proposals from this very prompt were applied in a row just before."""
        digest, count = self._repeat
        return count if digest == ask.digest else 0

    def _reply_tokens(self, ask: _Ask) -> int | None:
        """The reply tokens a call asks for: the call settings', else the client's, else
        ``reply_tokens`` of the step's variables (a model that never stops would otherwise
        generate up to its context limit)."""
        for settings in (self.call_settings, self.llm.settings):
            if "max_tokens" in settings:
                return settings["max_tokens"]
        return reply_tokens(ask.prompt.variables.values(), self.count_tokens)

    def _problem_tokens(self) -> int:
        """Prompt tokens left for the problem after the system prompt and a repair turn."""
        repair = REPAIR_TOKENS if self.max_attempts > 1 else 0
        return self.prompt_tokens - self.count_tokens(self.system_prompt) - repair

    def _ask(self) -> _Ask | None:
        params = [p for p in self.parameters if p.has_feedback]
        if not params:
            return None
        prompt = self._prompt(params, max(self._problem_tokens(), 16))
        messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": prompt.text}]
        return _Ask(prompt, messages, ReplyCheck(prompt.variables))

    def _conclude(self, ask: _Ask, done: Completion | None, started: float, call_seconds: float) -> Proposal:
        check = ask.check
        values: dict[str, Any] = {}
        if check.outcome == "accepted":
            values = {self._name_of[p]: value for p, value in check.accepted.items()}
            changed = any(ParameterUpdate(n, self.names[n].value, v).changed for n, v in values.items())
            status = "updated" if changed else "unchanged"
        else:
            status = "unchanged" if check.outcome == "done" else check.outcome
        spent = done.usage if done is not None else None
        report = self._report(
            status,
            reasoning=check.reasoning,
            answer=check.answer,
            calls=spent.calls if spent else 0,
            prompt_tokens=spent.prompt_tokens if spent else 0,
            completion_tokens=spent.completion_tokens if spent else 0,
            cached_prompt_tokens=spent.cached_prompt_tokens if spent else 0,
            cost_usd=done.cost_usd if done is not None else 0.0,
            seconds=time.perf_counter() - started,
            attempts=check.replies,
            rejections=list(check.rejections),
            details={"prompt_chars": sum(len(m["content"]) for m in ask.messages)},
            messages=list(done.request.messages) if done is not None and done.request is not None else [],
            reply=done.text if done is not None else "",
            overhead_ms=1000 * (time.perf_counter() - started - call_seconds + check.seconds),
            reason=_refusal(check, done),
        )
        # the memory records the values as they were shown, before any update
        return self._proposal(values, report, (Memory(ask.prompt.values, ask.prompt.feedback), ask.digest))

    def _take_state(self, state: Any) -> None:
        if state is not None:
            memory, digest = state
            self.memory.append(memory)
            self._repeat = (digest, self._repeat[1] + 1 if self._repeat[0] == digest else 1)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["objective"] = self.objective
        state["memory"] = [{"values": m.values, "feedback": m.feedback} for m in self.memory]
        state["repeat"] = list(self._repeat)
        return json.loads(json.dumps(state, default=repr))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned: everything is checked before anything
        changes, so a bad state leaves the optimizer as it was."""
        step_count = self._checked_step_count(state)
        objective = state.get("objective", self.objective)
        if not isinstance(objective, str):
            raise TracegradError(f"objective must be a string, got {objective!r}")
        memory = checked_memory(state.get("memory", []))
        repeat = checked_repeat(state.get("repeat", ["", 0]))
        self.step_count = step_count
        self._repeat = repeat
        self.objective = objective
        self.memory.clear()
        self.memory.extend(memory)


def reply_tokens(variables: Iterable[ParameterNode], count: TokenCounter = estimate_tokens) -> int:
    """The default reply bound of a step about ``variables`` (see ``MIN_REPLY_TOKENS``)."""
    room = sum(max(VARIABLE_REPLY_TOKENS, 4 * count(literal(p.value))) for p in variables)
    return min(MAX_REPLY_TOKENS, max(MIN_REPLY_TOKENS, REASONING_REPLY_TOKENS + room))


def _refusal(check: ReplyCheck, done: Completion | None) -> str:
    """Why no value of a step could be used, in one sentence (empty when some could)."""
    replies = f"{check.replies} repl{'y' if check.replies == 1 else 'ies'}"
    if check.outcome == "rejected":
        return f"the suggested values were invalid in {replies} ({check.rejections[-1].reason}); nothing changed"
    if check.outcome == "no_reply":
        why = f": {done.parse_error}" if done is not None and done.parse_error else ""
        return f"the model gave no usable reply in {replies}{why}; nothing changed"
    return ""


def _transport_counter(optimizer: LLMOptimizer) -> TokenCounter:
    """Counts with the client's transport (the model's tokenizer where it has one)."""

    def count(text: str) -> int:
        return optimizer.llm.count_tokens(text)[0]

    return count
