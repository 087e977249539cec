"""What a model must answer, and how its replies and suggested values are checked.

The reply schema is ``{reasoning, answer, suggestion: {name: value}}``. Each step's
schema is built from its variables (:func:`reply_schema`): their names are the only
keys of ``suggestion``, each typed by its kind (a number within its bounds, a choice as
an enum, code and text as strings), and the reasoning is bounded, so that a model that
decodes under the schema (llama.cpp's grammar, providers' JSON-schema modes) cannot
write an invalid suggestion or ramble. Replies are still parsed leniently. Each suggested
value is converted to its parameter's kind (numbers from numeric text, code out of
markdown fences, ...) and validated by the kind; anything that fails, or names a
variable the model was not shown, becomes a ``Rejection`` with a reason the model can
read. ``ReplyCheck`` is the check a step gives the client: it judges every reply and
keeps what the step reports. Nothing here assigns a parameter: that is done
all-or-nothing when a proposal is applied.
"""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from tracegrad._text import marker, truncate
from tracegrad.errors import InvalidValueError
from tracegrad.llm.request import Completion
from tracegrad.llm.structured import clean_text
from tracegrad.nodes.kinds import Code, Integer, Number, Text
from tracegrad.optimizers.base import Rejection
from tracegrad.optimizers.llm.docstrings import restore_docstring, split_docstring
from tracegrad.trace import ParameterNode

_FENCED = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)
PREVIEW_CHARS = 200
#: The longest reasoning a reply schema allows (a sentence or two).
REASONING_CHARS = 300


class Reply(BaseModel):
    """The JSON object an LLM optimizer asks for (lenient: missing parts default)."""

    model_config = ConfigDict(extra="allow")

    reasoning: str = ""
    answer: str | None = None
    suggestion: dict[str, Any] = {}

    @field_validator("reasoning", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else value if isinstance(value, str) else _dump(value)

    @field_validator("answer", mode="before")
    @classmethod
    def _answer(cls, value: Any) -> str | None:
        return None if value is None or value == {} else value if isinstance(value, str) else _dump(value)

    @field_validator("suggestion", mode="before")
    @classmethod
    def _suggestion(cls, value: Any) -> Any:
        if value is None or value == "" or value == []:
            return {}
        if isinstance(value, str):  # a JSON object given as a string
            try:
                value = json.loads(value)
            except ValueError:
                return value  # fails validation with a clear message
        return value

    def suggested(self, names: Mapping[str, Any]) -> dict[str, Any]:
        """The suggestion, plus known variable names the model put at the top level."""
        out = dict(self.suggestion)
        for key, value in (self.model_extra or {}).items():
            if key in names and key not in out:
                out[key] = value
        return out


def reply_schema(variables: Mapping[str, ParameterNode]) -> dict[str, Any]:
    """The JSON schema of a reply about these variables (see the module docstring)."""
    return {
        "title": "Reply",
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": REASONING_CHARS},
            "answer": {"type": ["string", "null"]},
            "suggestion": {
                "type": "object",
                "properties": {name: p.kind.json_schema() for name, p in variables.items()},
                "additionalProperties": False,
            },
        },
        "required": ["reasoning", "suggestion"],
        "additionalProperties": False,
    }


def reply_type(variables: Mapping[str, ParameterNode]) -> type[Reply]:
    """``Reply`` with the JSON schema of a reply about these variables: what a step asks
    for (the client sends its schema); parsing stays ``Reply``'s, lenient."""
    return _reply_type(json.dumps(reply_schema(variables), sort_keys=True))


@lru_cache(maxsize=64)
def _reply_type(schema_text: str) -> type[Reply]:
    class Reply_(Reply):
        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return json.loads(schema_text)  # a fresh copy: callers may change it

    Reply_.__name__ = Reply_.__qualname__ = "Reply"
    return Reply_


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def preview(value: Any) -> str:
    """A rendering of a suggested value for reports and repair turns, cut (with the one
    marker) to at most ``PREVIEW_CHARS`` characters."""
    text = clean_text(value if isinstance(value, str) else _dump(value))
    return truncate(text, PREVIEW_CHARS - len(marker(len(text))))


def _has_invalid_text(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if depth > 50:
        return False
    if isinstance(value, dict):
        return any(_has_invalid_text(k, depth + 1) or _has_invalid_text(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_invalid_text(v, depth + 1) for v in value)
    return False


def _unquoted(value: str, current: Any) -> str:
    """``value`` without the quotes of a Python string literal around it, when it is
    one and ``current`` is not quoted the same way (prompts show text as literals, and
    small models copy the quotes into their JSON string)."""
    text = value.strip()
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "'\"":
        return value
    if isinstance(current, str) and current.strip()[:1] == text[0] == current.strip()[-1:]:
        return value
    try:
        inner = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
    return inner if isinstance(inner, str) else value


def coerce(param: ParameterNode, value: Any) -> Any:
    """Bring a model's value into the shape the parameter's kind expects.

    Only unambiguous conversions: code taken out of a markdown fence (and given back the
    current docstring when it has none, see ``docstrings``), numbers for text, text
    given as the Python literal the prompt shows it as (``'a b'``) unquoted unless the
    current value is itself quoted, numeric strings trimmed for numbers. The kind's own
    validation decides the rest.
    """
    kind = param.kind
    if isinstance(kind, Code) and isinstance(value, str):
        fenced = _FENCED.match(value)
        code = fenced.group(1) if fenced else value
        return restore_docstring(code, kind.function, split_docstring(str(param.value), kind.function)[1])
    if isinstance(kind, Text) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(kind, Text) and isinstance(value, str):
        return _unquoted(value, param.value)
    if isinstance(kind, (Number, Integer)) and isinstance(value, str):
        return value.strip()
    return value


def check(
    suggestion: Mapping[str, Any], variables: Mapping[str, ParameterNode]
) -> tuple[dict[ParameterNode, Any], list[Rejection]]:
    """Split a suggestion into validated new values and rejections (never raises)."""
    accepted: dict[ParameterNode, Any] = {}
    rejected: list[Rejection] = []
    for raw_name, value in suggestion.items():
        name = clean_text(str(raw_name)).strip()
        param = variables.get(name)
        if param is None:
            known = ", ".join(variables) or "none"
            rejected.append(Rejection(name, preview(value), f"unknown variable; the variables are: {known}"))
            continue
        if _has_invalid_text(value):
            rejected.append(Rejection(name, preview(value), "the value holds invalid Unicode (a lone surrogate)"))
            continue
        try:
            accepted[param] = param.kind.validate(coerce(param, value))
        except InvalidValueError as exc:
            rejected.append(Rejection(name, preview(value), exc.reason))
        except Exception as exc:  # a kind that fails in another way must not end the step
            rejected.append(Rejection(name, preview(value), f"{type(exc).__name__}: {exc}"))
    return accepted, rejected


_REPLY_KEYS = frozenset({"reasoning", "answer", "suggestion"})


class ReplyCheck:
    """Judges each reply of one step, as the client's ``check``, and keeps what the
    step reports: the accepted values, every rejection, the last reasoning and answer,
    how many replies it judged and the seconds it spent judging them.

    ``outcome`` of the last reply is ``accepted`` (every suggested value is valid),
    ``done`` (the model answered ``TERMINATE``: nothing should change), ``rejected`` (a
    suggested value failed its check) or ``no_reply`` (no usable JSON object).
    """

    def __init__(self, variables: Mapping[str, ParameterNode]) -> None:
        self.variables = variables
        self.outcome = "no_reply"
        self.accepted: dict[ParameterNode, Any] = {}
        self.rejections: list[Rejection] = []
        self.reasoning = ""
        self.answer: str | None = None
        self.replies = 0
        self.seconds = 0.0

    def __call__(self, done: Completion) -> list[str]:
        """Why the reply ``done`` cannot be used (none: it is accepted)."""
        started = time.perf_counter()
        try:
            return self._judge(done)
        finally:
            self.seconds += time.perf_counter() - started

    def _judge(self, done: Completion) -> list[str]:
        self.replies += 1
        self.outcome = "no_reply"
        reply: Reply | None = done.parsed
        if reply is None:
            if done.text.strip().upper().startswith("TERMINATE"):
                self.outcome = "done"
                return []
            return [f"the reply held no usable JSON object: {done.parse_error}"]
        if done.finish_reason == "length":
            return ["the reply was cut off at the length limit; answer more briefly"]
        suggested = reply.suggested(self.variables)
        if not (reply.model_fields_set & _REPLY_KEYS) and not suggested:
            return ['it is not the reply asked for: it has none of the keys "reasoning", "answer", "suggestion"']
        self.reasoning = clean_text(reply.reasoning)
        self.answer = None if reply.answer is None else clean_text(reply.answer)
        accepted, rejected = check(suggested, self.variables)
        if rejected:
            self.outcome = "rejected"
            self.rejections.extend(rejected)
            return ["Nothing was changed; these values are invalid:", *(r.line() for r in rejected)]
        self.outcome = "accepted"
        self.accepted = accepted
        return []
