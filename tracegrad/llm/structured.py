"""Structured output: ask for JSON in the strongest way the provider supports, then
parse strictly, repair what is almost JSON, and validate with a pydantic model.

Modes, strongest first:

* ``json_schema`` — the provider constrains the reply to the schema;
* ``json_object`` — the provider guarantees JSON; the schema goes in the prompt;
* ``text`` — plain text; the schema goes in the prompt and the reply is repaired
  (JSON inside prose or code fences, trailing commas, single quotes, Python literals,
  raw newlines in strings) before validation. Repair is for replies up to
  ``REPAIR_MAX_CHARS`` long: the repairer's time grows with the square of the length
  of an unterminated string, and a reply that long is cut off, not almost JSON.

A reply that cannot be used is shown back to the model in one bounded repair turn
(``repair_prompt``); the loop of turns is ``tracegrad.llm.structured_run``'s.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from tracegrad._text import marker, truncate
from tracegrad.llm.request import Message, json_schema

MODES = ("json_schema", "json_object", "text")
#: The longest reply that is repaired (about 0.3 s at worst); a longer one must parse as it is.
REPAIR_MAX_CHARS = 50_000
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class ParseFailure(ValueError):
    """A reply that is not (repairable) JSON or does not validate; ``str()`` says why."""


def check_schema(schema: Any) -> type[BaseModel]:
    """Accept a pydantic model class, refuse anything else with a clear message."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema
    raise TypeError(f"schema must be a pydantic BaseModel subclass, got {schema!r}")


def schema_name(schema: type[BaseModel]) -> str:
    """The schema's name as providers accept it (letters, digits, ``_`` and ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64] or "Output"


@lru_cache(maxsize=128)
def _json_schema_text(schema: type[BaseModel]) -> str:
    return json.dumps(json_schema(schema), sort_keys=True)


def response_format(schema: type[BaseModel], mode: str) -> dict[str, Any] | None:
    """The ``response_format`` request setting for ``mode`` (None in text mode)."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": schema_name(schema), "schema": copy.deepcopy(json_schema(schema))},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "text":
        return None
    raise ValueError(f"unknown structured output mode {mode!r}; use one of {MODES}")


def next_mode(mode: str) -> str | None:
    """The weaker mode to fall back to when a provider refuses ``mode``."""
    i = MODES.index(mode)
    return MODES[i + 1] if i + 1 < len(MODES) else None


def instruct(messages: list[Message], schema: type[BaseModel], mode: str) -> list[Message]:
    """Messages that also tell the model the schema (unless the provider enforces it)."""
    if mode == "json_schema":
        return list(messages)
    text = (
        "Reply with only a JSON object (no prose, no code fences) that matches this "
        f"JSON schema:\n{_json_schema_text(schema)}"
    )
    out = [dict(m) for m in messages]
    if out and out[-1].get("role") == "user" and isinstance(out[-1].get("content"), str):
        out[-1]["content"] = f"{out[-1]['content']}\n\n{text}"
    else:
        out.append({"role": "user", "content": text})
    return out


#: Characters of a rejected reply, and of the reasons, shown back in a repair turn.
REPAIR_REPLY_CHARS = 900
REPAIR_REASONS_CHARS = 720
_REPAIR_HEAD = "Your previous reply could not be used:\n"
_REPAIR_TAIL = "\nReply again with only a JSON object that matches the schema."
#: The most characters a repair turn adds to the request (reply, reasons, fixed text).
REPAIR_TURN_CHARS = (
    REPAIR_REPLY_CHARS + REPAIR_REASONS_CHARS + 2 * len(marker(10**9)) + len(_REPAIR_HEAD) + len(_REPAIR_TAIL)
)


def clean_text(text: str) -> str:
    """``text`` with anything that is not valid Unicode (lone surrogates, which JSON
    escapes can produce) replaced, so that it can be sent, hashed and logged."""
    return text.encode("utf-8", "replace").decode("utf-8")


def repair_prompt(messages: list[Message], raw_text: str, reasons: list[str]) -> list[Message]:
    """Messages for a retry that shows the model its rejected reply and why, both cut
    to a bounded length (at most ``REPAIR_TURN_CHARS`` more than ``messages``)."""
    why = truncate(clean_text("\n".join(reasons)), REPAIR_REASONS_CHARS)
    return [
        *messages,
        {"role": "assistant", "content": truncate(clean_text(raw_text), REPAIR_REPLY_CHARS)},
        {"role": "user", "content": f"{_REPAIR_HEAD}{why}{_REPAIR_TAIL}"},
    ]


def _candidates(text: str) -> list[Any]:
    """JSON values found in ``text``: strict parses first, then repaired ones."""
    found: list[Any] = []
    stripped = text.strip()
    for chunk in [stripped, *(m.group(1).strip() for m in _FENCE.finditer(text))]:
        with contextlib.suppress(ValueError, RecursionError):
            found.append(json.loads(chunk))
    if found or len(text) > REPAIR_MAX_CHARS:
        return found
    try:
        from json_repair import repair_json

        repaired = repair_json(text, return_objects=True)
    except Exception:  # the repairer is best effort; never let it crash a run
        return []
    if isinstance(repaired, list) and all(isinstance(x, dict) for x in repaired):
        return [*repaired, repaired] if repaired else []
    return [] if repaired in ("", None) else [repaired]


def extract_json(text: str) -> Any:
    """The JSON value in a model reply, repairing it if needed.

    Raises :class:`ParseFailure` when no JSON can be found; never anything else.
    """
    found = _candidates(text if isinstance(text, str) else str(text))
    if not found:
        raise ParseFailure(_no_json(text))
    return found[0]


def parse_structured(text: str, schema: type[BaseModel]) -> BaseModel:
    """Validate the JSON in ``text`` against ``schema``.

    Tries every JSON value found in the reply and returns the first that validates;
    otherwise raises :class:`ParseFailure` with the validation error as its reason.
    """
    found = _candidates(text if isinstance(text, str) else str(text))
    if not found:
        raise ParseFailure(_no_json(text))
    first_error: str | None = None
    for value in found:
        try:
            return schema.model_validate(value)
        except ValidationError as exc:
            first_error = first_error or _short(exc)
    raise ParseFailure(f"the JSON does not match the schema {schema_name(schema)}: {first_error}")


def _no_json(text: Any) -> str:
    if len(str(text)) > REPAIR_MAX_CHARS:
        return f"the reply is not JSON, and at {len(str(text))} characters too long to repair (over {REPAIR_MAX_CHARS})"
    return "the reply contains no JSON object"


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = f" (+{exc.error_count() - 8} more)" if exc.error_count() > 8 else ""
    return "; ".join(parts) + more
