"""Which model a client uses when none is given, and how local model names resolve."""

from __future__ import annotations

import pytest

import tracegrad.llm.config as config
from tracegrad.llm import LLM, LLMConfigError, ScriptedTransport
from tracegrad.llm.litellm_transport import LiteLLMTransport
from tracegrad.llm.local import LocalTransport, is_local, llama_response_format, model_file
from tracegrad.llm.local.transport import DEFAULT_NAME


def test_the_embedded_model_is_the_default_when_installed(monkeypatch):
    monkeypatch.delenv("TRACEGRAD_EMBEDDED_MODEL")  # the autouse fixture turns it off
    monkeypatch.setattr(config, "llama_available", lambda: True)
    monkeypatch.setattr(config, "available", lambda: True)
    llm = LLM()
    assert llm.model == DEFAULT_NAME
    assert isinstance(llm.transport, LocalTransport)


def test_the_embedded_model_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(config, "llama_available", lambda: True)
    monkeypatch.setattr(config, "available", lambda: True)
    for off in ("off", "0", "false"):
        monkeypatch.setenv("TRACEGRAD_EMBEDDED_MODEL", off)
        assert config.configured_model() is None
    assert config.configured_model("local") == "local"  # it can still be named


def test_without_the_embedded_model_the_error_names_both_ways(monkeypatch):
    monkeypatch.delenv("TRACEGRAD_EMBEDDED_MODEL")
    monkeypatch.setattr(config, "llama_available", lambda: False)
    with pytest.raises(LLMConfigError) as err:
        LLM()
    message = str(err.value)
    assert "tracegrad[local]" in message and "TRACEGRAD_MODEL" in message and "model=" in message


def test_environment_wins_over_the_embedded_model(monkeypatch):
    monkeypatch.delenv("TRACEGRAD_EMBEDDED_MODEL")
    monkeypatch.setattr(config, "_default_model", lambda: DEFAULT_NAME)
    monkeypatch.setenv("TRACEGRAD_MODEL", "openai/gpt-4o-mini")
    llm = LLM()
    assert llm.model == "openai/gpt-4o-mini" and isinstance(llm.transport, LiteLLMTransport)


def test_an_explicit_transport_is_kept_for_local_names():
    scripted = ScriptedTransport(["x"])
    assert LLM("local", transport=scripted).transport is scripted


@pytest.mark.parametrize("name", ["local", DEFAULT_NAME, "local/some/file.gguf"])
def test_local_names(name):
    assert is_local(name)
    assert not is_local("localhost/x") and not is_local("openai/local")


def test_a_gguf_path_is_used_as_given(tmp_path):
    f = tmp_path / "tiny.gguf"
    f.write_bytes(b"GGUF")
    assert model_file(f"local/{f}") == f
    with pytest.raises(LLMConfigError, match="does not exist"):
        model_file(f"local/{tmp_path / 'missing.gguf'}")
    with pytest.raises(LLMConfigError, match="unknown local model"):
        model_file("local/not-a-model")


def test_a_json_schema_is_sent_as_llama_cpp_enforces_it():
    schema = {"type": "object", "properties": {"x": {"type": "number"}}}
    sent = llama_response_format({"type": "json_schema", "json_schema": {"name": "Reply", "schema": schema}})
    assert sent == {"type": "json_object", "schema": schema}
    assert llama_response_format({"type": "json_object"}) == {"type": "json_object"}
    assert llama_response_format(None) is None
