"""What a model must answer, and how its suggested values are checked.

The reply schema is ``{reasoning, answer, suggestion: {name: value}}``. Each suggested
value is converted to its parameter's kind (numbers from numeric text, code out of
markdown fences, ...) and validated by the kind; anything that fails, or names a
variable the model was not shown, becomes a ``Rejection`` with a reason the model can
read. Nothing here assigns a parameter: that is done all-or-nothing afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from tracegrad.errors import InvalidValueError
from tracegrad.nodes.kinds import Code, Integer, Number, Text
from tracegrad.trace.node import ParameterNode

_FENCED = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)
PREVIEW_CHARS = 200


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


@dataclass
class Rejection:
    """A suggested value that was not accepted, and why."""

    name: str
    value: str
    reason: str

    def line(self) -> str:
        return f"- {self.name} = {self.value}: {self.reason}"


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def clean_text(text: str) -> str:
    """``text`` with anything that is not valid Unicode (lone surrogates, which JSON
    escapes can produce) replaced, so that it can be sent, hashed and logged."""
    return text.encode("utf-8", "replace").decode("utf-8")


def preview(value: Any) -> str:
    """A short rendering of a suggested value for reports and re-asks."""
    text = clean_text(value if isinstance(value, str) else _dump(value))
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."


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


def coerce(param: ParameterNode, value: Any) -> Any:
    """Bring a model's value into the shape the parameter's kind expects.

    Only unambiguous conversions: code taken out of a markdown fence, numbers for text,
    numeric strings trimmed for numbers. The kind's own validation decides the rest.
    """
    kind = param.kind
    if isinstance(kind, Code) and isinstance(value, str):
        fenced = _FENCED.match(value)
        return fenced.group(1) if fenced else value
    if isinstance(kind, Text) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
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
