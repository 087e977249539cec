"""``call_llm``: a model call inside a traced pipeline, recorded as one operation.

::

    system = tg.node("Answer in one word.", trainable=True, name="system")
    answer = tg.call_llm(system, question, llm=task_llm, temperature=0)
    opt.backward(answer, "wrong: the capital of France is Paris")

The operation's inputs are its prompts (the system prompt and each user prompt, nodes
or strings), so feedback on the reply reaches every trainable prompt it was asked
with, and an optimizer sees the line ``answer = call_llm(system, question)`` with the
prompts' values. The call goes through the one client (``LLM``): its cache, retries,
accounting, budget and structured output apply. With ``schema`` the reply is parsed
into that pydantic model and the node holds the object.

A failed call (after the client's retries, or a reply that never fit the schema)
becomes an error node, raised as ``ExecutionError``, to be used as feedback; a spent
budget (``BudgetExceeded``) is raised as it is, since it must stop the run. Inside a
plain bundled function the call just runs and returns the plain value, like a nested
bundle.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel

from tracegrad.llm.errors import BudgetExceeded
from tracegrad.llm.settings import check_call_settings
from tracegrad.trace import Node, Operator, current_reads, is_tracing, record, record_error, resolve, unique_nodes

if TYPE_CHECKING:
    from tracegrad.llm.client import LLM
    from tracegrad.llm.request import Completion

_DESCRIPTION = (
    "Asks a language model: the system prompt, then each user prompt as a user message; returns the model's reply."
)
_SHOWN = ("model",)  # the keyword arguments a code line shows (not the client or its settings)


class ModelCallOperator(Operator):
    """The operator of ``call_llm``: shows ``call_llm(system, user)``, plus ``model=``
    when one was named, but not the client or the sampling settings."""

    __slots__ = ()

    def format_call(self, arg_exprs: Sequence[str], kwarg_exprs: dict[str, str]) -> str:
        shown = {k: v for k, v in kwarg_exprs.items() if k in _SHOWN}
        return super().format_call(arg_exprs, shown)


@functools.lru_cache(maxsize=64)
def _operator(name: str, users: int) -> ModelCallOperator:
    """One operator per name and number of user prompts, so that an optimizer's prompt
    describes ``call_llm`` once however many calls the pipeline makes."""
    argnames = ("system", "user") if users == 1 else ("system", *(f"user{i}" for i in range(1, users + 1)))
    return ModelCallOperator(name, _ask, _DESCRIPTION, argnames=argnames, source=call_llm)


def _messages(system: Any, user: Sequence[Any]) -> list[dict[str, str]]:
    messages = [] if system is None else [{"role": "system", "content": _text(system)}]
    return messages + [{"role": "user", "content": _text(u)} for u in user]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _client(llm: LLM | None, model: str | None) -> LLM:
    if llm is not None:
        return llm
    from tracegrad.llm.client import LLM

    return LLM(model)


def _options(llm: LLM | None, model: str | None, schema: Any, extra: Any, sampling: dict[str, Any]) -> dict:
    options: dict[str, Any] = dict(sampling)
    if schema is not None:
        options["schema"] = schema
    if extra:
        options["extra"] = extra
    if model is not None and llm is not None:
        options["model"] = model  # a model named for this call overrides the client's
    return options


def _value(done: Completion, schema: Any) -> Any:
    return done.text if schema is None else done.parsed


def _ask(
    system: Any,
    *user: Any,
    llm: LLM | None = None,
    model: str | None = None,
    schema: type[BaseModel] | None = None,
    extra: Mapping[str, Any] | None = None,
    **sampling: Any,
) -> Any:
    """The model's reply to these prompts (plain values): the function a recorded
    ``call_llm`` operation ran."""
    client = _client(llm, model)
    done = client.complete(_messages(system, user), **_options(llm, model, schema, extra, sampling))
    return _value(done, schema)


def _prepare(
    who: str, system: Any, user: tuple, llm: Any, model: Any, schema: Any, extra: Any, sampling: dict, name: str
) -> tuple[Operator, tuple, dict[str, Any], tuple[Node, ...]]:
    check_call_settings(who, sampling)
    if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise TypeError(f"{who}: schema must be a pydantic model class, got {schema!r}")
    args = (system, *user)
    kwargs = {"llm": llm, "model": model, "schema": schema, "extra": extra, **sampling}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return _operator(name, len(user)), args, kwargs, unique_nodes(args)


def _finish(op: Operator, args: tuple, kwargs: dict, parents: tuple[Node, ...], value: Any) -> Any:
    reads = current_reads()
    if reads is not None and not is_tracing():  # inside a bundled function: just run
        reads.extend(parents)
        return value
    return record(op, args, kwargs, parents, value)


def _raise(op: Operator, args: tuple, kwargs: dict, parents: tuple[Node, ...], exc: Exception) -> NoReturn:
    """Raise a failed call's error node, or ``exc`` itself for a spent budget (it stops
    the run) and inside a bundled function (the bundle records the failure)."""
    if isinstance(exc, BudgetExceeded) or (current_reads() is not None and not is_tracing()):
        raise exc
    raise record_error(op, args, kwargs, parents, exc) from exc


def call_llm(
    system: Any,
    *user: Any,
    llm: LLM | None = None,
    model: str | None = None,
    schema: type[BaseModel] | None = None,
    extra: Mapping[str, Any] | None = None,
    name: str = "call_llm",
    **sampling: Any,
) -> Any:
    """Ask a model and record the call as one operation whose inputs are the prompts.

    Args:
        system: the system prompt (a node or a string; None: no system message).
        user: the user prompts, each a node or a string, sent as user messages in order.
        llm: the client to ask (default: ``LLM(model)``, configured from
            ``$TRACEGRAD_MODEL``; pass one to share its ledger and budget).
        model: a litellm model name for this call (overrides the client's).
        schema: a pydantic model: the reply is parsed into it and the node holds the
            object.
        extra: a provider's own parameters for this call.
        name: the operation's name in the trace (e.g. ``"planner"``).
        sampling: ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``stop``.

    Returns the reply's node (the plain reply inside a bundled function); see the
    module docstring for errors.
    """
    op, args, kwargs, parents = _prepare("call_llm", system, user, llm, model, schema, extra, sampling, name)
    values = resolve(args)
    try:
        value = _ask(*values, **kwargs)
    except Exception as exc:
        _raise(op, args, kwargs, parents, exc)
    return _finish(op, args, kwargs, parents, value)


async def acall_llm(
    system: Any,
    *user: Any,
    llm: LLM | None = None,
    model: str | None = None,
    schema: type[BaseModel] | None = None,
    extra: Mapping[str, Any] | None = None,
    name: str = "call_llm",
    **sampling: Any,
) -> Any:
    """``call_llm`` for async code: the model is asked with ``acomplete``."""
    op, args, kwargs, parents = _prepare("acall_llm", system, user, llm, model, schema, extra, sampling, name)
    system_value, *user_values = resolve(args)
    try:
        client = _client(llm, model)
        options = _options(llm, model, schema, extra, sampling)
        done = await client.acomplete(_messages(system_value, user_values), **options)
        value = _value(done, schema)
    except Exception as exc:
        _raise(op, args, kwargs, parents, exc)
    return _finish(op, args, kwargs, parents, value)


__all__ = ["ModelCallOperator", "acall_llm", "call_llm"]
