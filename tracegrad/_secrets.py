"""Credentials: the one rule for what is secret, and the one redaction used everywhere.

A setting is secret when its name says so: a word of it (``api_key`` -> ``api``,
``key``; ``X-Auth-Token`` -> ``x``, ``auth``, ``token``; ``accessToken`` -> ``access``,
``token``) is or ends with ``key``, ``token``, ``secret``, ``password``, ``passwd``,
``credential(s)``, or begins with ``auth`` (``Authorization``). Counts such as
``max_tokens`` are not secret (``tokens`` is not ``token``). A URL's password and its
secret query parameters are secret too (``https://user:pw@host/?key=...``).

:func:`redact` replaces every secret in JSON-like data by :data:`REDACTED`; it is what
goes into cache keys, cache rows, replay files and reprs, so none of them depends on
the value of a credential. :func:`secret_values` collects the secret strings of some
data (and of the environment's credential variables), and :func:`scrub` removes those
strings from free text: exception messages, log records, stored replies.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"

# Secret strings shorter than this are not scrubbed from text: they would match too often.
MIN_SECRET_CHARS = 6

_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_ENDINGS = ("key", "token", "secret", "password", "passwd", "credential", "credentials")
# Setting names that hold one of those words but no credential.
_NOT_SECRET = frozenset({"prompt_cache_key", "cache_key", "idempotency_key"})
_AUTHOR = frozenset({"author", "authors", "authored", "authoring", "authorship"})
# The calls' secrets in this context, for the log filter (set by ``secrets_in_scope``).
_SCOPE: ContextVar[frozenset[str]] = ContextVar("tracegrad_secrets", default=frozenset())


def is_secret_name(name: Any) -> bool:
    """Whether a setting, header or environment variable called ``name`` holds a credential."""
    if not isinstance(name, str) or name.lower() in _NOT_SECRET:
        return False
    for word in _WORDS.findall(name):
        word = word.lower()
        if word.endswith(_ENDINGS) or (word.startswith("auth") and word not in _AUTHOR):
            return True
    return False


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced (other text unchanged)."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:{REDACTED}@{netloc.rpartition('@')[2]}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(is_secret_name(k) for k, _ in pairs):
                query = urlencode([(k, REDACTED if is_secret_name(k) else v) for k, v in pairs], safe="*")
    except ValueError:  # not a URL after all (e.g. an invalid port): nothing to recognize
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact(value: Any) -> Any:
    """JSON-like ``value`` with the value of every secret name replaced by ``REDACTED``
    and credentials taken out of URLs; data without secrets comes back equal."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_name(k) and v is not None else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _strings(v)


def _found(value: Any, out: set[str]) -> None:
    """Add the secret strings inside ``value`` to ``out``."""
    if isinstance(value, str):
        if "://" in value:
            try:
                parts = urlsplit(value)
                if parts.password:
                    out.add(parts.password)
                out.update(v for k, v in parse_qsl(parts.query) if is_secret_name(k))
            except ValueError:
                pass
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if is_secret_name(k):
                out.update(_strings(v))
            else:
                _found(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _found(v, out)


def secret_values(*data: Any, environment: bool = True) -> frozenset[str]:
    """The secret strings in ``data`` (see :func:`redact`) and, with ``environment``, the
    values of environment variables whose names say they hold credentials. A header
    such as ``Bearer <token>`` also contributes the token alone."""
    out: set[str] = set()
    for item in data:
        _found(item, out)
    if environment:
        out.update(v for k, v in os.environ.items() if is_secret_name(k))
    for value in list(out):
        _, _, credential = value.strip().partition(" ")
        if credential and " " not in credential:
            out.add(credential)
    return frozenset(s for s in out if len(s) >= MIN_SECRET_CHARS)


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (a text, or JSON-like data) with every occurrence of ``secrets`` in its
    strings replaced by ``REDACTED``."""
    ordered = sorted(set(secrets), key=len, reverse=True)
    if not ordered:
        return value
    return _scrub(value, re.compile("|".join(map(re.escape, ordered))))


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {k: _scrub(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    return value


def scrub_error(exc: BaseException, secrets: Iterable[str]) -> None:
    """Take ``secrets`` out of the messages of ``exc`` and of the exceptions chained to it
    (a provider's error may quote a credential it was sent)."""
    secrets = frozenset(secrets)
    seen: set[int] = set()
    current: BaseException | None = exc
    while secrets and current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in current.args)
        if isinstance(getattr(current, "message", None), str):
            with suppress(AttributeError, TypeError):
                current.message = scrub(current.message, secrets)  # type: ignore[attr-defined]
        current = current.__cause__ or current.__context__


@contextmanager
def secrets_in_scope(secrets: Iterable[str]) -> Iterator[None]:
    """While open, records of the ``tracegrad`` loggers made in this context (a retry's
    warning quoting a provider's error, say) have ``secrets`` scrubbed from them."""
    token = _SCOPE.set(_SCOPE.get() | frozenset(secrets))
    try:
        yield
    finally:
        _SCOPE.reset(token)


class RedactingFilter(logging.Filter):
    """A log filter that scrubs the secrets in scope and the environment's credentials
    from each record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _SCOPE.get() | secret_values()
        if secrets:
            message = record.getMessage()
            clean = scrub(message, secrets)
            if clean != message:
                record.msg, record.args = clean, ()
        return True


def install_filter(logger: logging.Logger) -> None:
    """Add one :class:`RedactingFilter` to ``logger`` (a second call adds nothing)."""
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())


__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "RedactingFilter",
    "install_filter",
    "is_secret_name",
    "redact",
    "redact_url",
    "scrub",
    "scrub_error",
    "secret_values",
    "secrets_in_scope",
]
