"""The one rule for what is a credential, and the redaction built on it."""

from __future__ import annotations

import logging

import pytest

from tracegrad._secrets import (
    REDACTED,
    RedactingFilter,
    is_secret_name,
    redact,
    redact_url,
    scrub,
    scrub_error,
    secret_values,
    secrets_in_scope,
)

SECRET_NAMES = [
    "api_key",
    "apiKey",
    "APIKEY",
    "Authorization",
    "proxy-authorization",
    "X-Api-Key",
    "x-auth-token",
    "aws_secret_access_key",
    "aws_session_token",
    "accessToken",
    "client_secret",
    "password",
    "db_passwd",
    "vertex_credentials",
    "OPENAI_API_KEY",
]
PLAIN_NAMES = ["max_tokens", "max_completion_tokens", "temperature", "top_k", "seed", "stop", "author", "model"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_names_that_say_credential_are_secret(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [*PLAIN_NAMES, "prompt_cache_key", 3, None])
def test_other_names_are_not(name):
    assert not is_secret_name(name)


def test_redact_replaces_secret_values_at_any_depth_and_keeps_the_rest():
    params = {
        "temperature": 0,
        "extra_headers": {"Authorization": "Bearer sk-live-123456", "X-Trace": "on"},
        "aws_secret_access_key": "wJalrXUtnFEMI",
        "stop": ["\n"],
        "api_key": None,
    }
    assert redact(params) == {
        "temperature": 0,
        "extra_headers": {"Authorization": REDACTED, "X-Trace": "on"},
        "aws_secret_access_key": REDACTED,
        "stop": ["\n"],
        "api_key": None,
    }
    plain = {"temperature": 0.2, "stop": ["a"], "logit_bias": {"50256": -100}}
    assert redact(plain) == plain


def test_a_url_keeps_its_host_and_loses_its_password_and_secret_query():
    assert (
        redact_url("https://alice:hunter22@llm.example.com:8443/v1")
        == f"https://alice:{REDACTED}@llm.example.com:8443/v1"
    )
    assert redact_url("https://host/v1?key=abcdef123&region=eu") == f"https://host/v1?key={REDACTED}&region=eu"
    assert redact_url("http://localhost:8000/v1") == "http://localhost:8000/v1"
    assert redact_url("not a url") == "not a url"


def test_secret_values_finds_credentials_in_data_urls_headers_and_the_environment(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "env-token-987654")
    found = secret_values(
        {
            "api_key": "sk-abcdef",
            "api_base": "https://u:pa55word@h/v1",
            "params": {"extra_headers": {"Authorization": "Bearer tok-123456"}},
        }
    )
    assert {"sk-abcdef", "pa55word", "Bearer tok-123456", "tok-123456", "env-token-987654"} <= found
    assert "u" not in found and "Bearer" not in found


def test_scrub_takes_every_secret_out_of_text_and_data():
    secrets = {"sk-abcdef", "sk-abcdef-longer"}
    assert scrub("key sk-abcdef-longer and sk-abcdef", secrets) == f"key {REDACTED} and {REDACTED}"
    assert scrub({"a": ["x sk-abcdef y"], "n": 3}, secrets) == {"a": [f"x {REDACTED} y"], "n": 3}


def test_scrub_error_cleans_the_whole_chain():
    try:
        try:
            raise ConnectionError("401 for key sk-abcdef")
        except ConnectionError as inner:
            raise RuntimeError("call failed: sk-abcdef") from inner
    except RuntimeError as exc:
        scrub_error(exc, {"sk-abcdef"})
        assert "sk-abcdef" not in str(exc) and "sk-abcdef" not in str(exc.__cause__)


def test_the_log_filter_scrubs_secrets_in_scope_and_from_the_environment(monkeypatch):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "env-key-13579")
    record = logging.LogRecord("tracegrad.llm", logging.WARNING, __file__, 1, "failed: %s / %s", None, None)
    with secrets_in_scope({"call-secret-2468"}):
        record.args = ("call-secret-2468", "env-key-13579")
        RedactingFilter().filter(record)
    assert record.getMessage() == f"failed: {REDACTED} / {REDACTED}"
