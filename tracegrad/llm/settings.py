"""Which settings reach a model provider, and the one error for a misspelled argument.

Every request carries the sampling settings of :data:`SAMPLING` (each a keyword of
``LLM``, of the LLM optimizers and of ``call_llm``) and, through one explicit place,
a provider's own parameters: ``extra={...}`` (``LLM(extra=...)``, an optimizer's
``extra=``, or per call). Both end up in the request's ``params``, so a setting is
keyed in the cache the same way whichever door it came through. Anything else is a
mistake, reported by :func:`unknown_arguments` with the closest valid name, instead of
being sent to the provider.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

#: The sampling settings every model call accepts as keywords.
SAMPLING: tuple[str, ...] = ("temperature", "top_p", "max_tokens", "seed", "stop")

#: Per-call options of a request that are not sampling settings (``LLM.complete``).
REQUEST_OPTIONS: tuple[str, ...] = ("model", "api_base", "api_key", "timeout")

F = TypeVar("F", bound=Callable[..., Any])


def unknown_arguments(who: str, unknown: Iterable[str], valid: Iterable[str], hint: str = "") -> TypeError:
    """A ``TypeError`` naming the unknown keyword arguments of ``who``, each with the
    closest valid name when there is one, and ``hint`` (where such a value belongs)."""
    valid = sorted(set(valid))
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    noun = "argument" if len(parts) == 1 else "arguments"
    message = f"{who} got unknown keyword {noun} {', '.join(parts)}"
    return TypeError(f"{message}; {hint}" if hint else message)


PROVIDER_HINT = "a provider's own parameters go in extra={...}"


def sampling_settings(**given: Any) -> dict[str, Any]:
    """The sampling settings that were set (None means: left to the provider)."""
    return {k: v for k, v in given.items() if v is not None}


def merged(settings: Mapping[str, Any], extra: Mapping[str, Any] | None, who: str) -> dict[str, Any]:
    """``settings`` and ``extra`` in one dict of request parameters; ``extra`` may not
    hold a sampling setting or a request option (each has its own keyword)."""
    out = dict(settings)
    if extra:
        if not isinstance(extra, Mapping):
            raise TypeError(f"{who}: extra must be a dict of a provider's parameters, got {type(extra).__name__}")
        taken = [k for k in extra if k in SAMPLING or k in REQUEST_OPTIONS or k in ("messages", "response_format")]
        if taken:
            raise TypeError(f"{who}: pass {', '.join(map(repr, taken))} as a keyword argument, not in extra")
        out.update(extra)
    return out


def check_call_settings(who: str, settings: Mapping[str, Any], *, options: Iterable[str] = ()) -> None:
    """Raise ``unknown_arguments`` unless every key of ``settings`` is a sampling setting
    or one of ``options``."""
    allowed = {*SAMPLING, *options}
    unknown = [k for k in settings if k not in allowed]
    if unknown:
        raise unknown_arguments(who, unknown, allowed, PROVIDER_HINT)


def checked_keywords(hint: str = "") -> Callable[[F], F]:
    """Decorate an ``__init__`` so that an unknown keyword raises ``unknown_arguments``,
    suggesting the closest keyword of the class (its bases' ``__init__`` included)."""

    def wrap(init: F) -> F:
        @functools.wraps(init)
        def checked(self: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs:
                names = _class_keywords(type(self))
                unknown = [k for k in kwargs if k not in names]
                if unknown:
                    raise unknown_arguments(type(self).__name__, unknown, names, hint)
            init(self, *args, **kwargs)

        return checked  # type: ignore[return-value]

    return wrap


def _keywords(fn: Callable[..., Any]) -> frozenset[str]:
    params = inspect.signature(fn).parameters.values()
    return frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self")


@functools.lru_cache(maxsize=64)
def _class_keywords(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and klass is not object:
            names |= _keywords(inspect.unwrap(init))
    return frozenset(names)


__all__ = [
    "PROVIDER_HINT",
    "REQUEST_OPTIONS",
    "SAMPLING",
    "check_call_settings",
    "checked_keywords",
    "merged",
    "sampling_settings",
    "unknown_arguments",
]
