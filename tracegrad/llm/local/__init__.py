"""The embedded local model: a GGUF file run by llama.cpp, offline, no key needed.

``LLM()`` uses it when no other model is configured and ``tracegrad[local]`` is
installed; ``LLM(model="local")`` asks for it explicitly and ``local/<path>.gguf``
selects any other GGUF file. Requests run in this process (:class:`LocalTransport`);
:func:`serve` starts llama.cpp's OpenAI-compatible server on 127.0.0.1 for tools that
need an HTTP endpoint.
"""

from tracegrad.llm.local.server import LlamaServerTransport, LocalServer
from tracegrad.llm.local.transport import (
    DEFAULT_NAME,
    LocalTransport,
    is_local,
    llama_available,
    llama_response_format,
    model_file,
)
from tracegrad.llm.local.weights import QWEN_CODER_1_5B, ModelWeights, assemble, available, model_dir

__all__ = [
    "DEFAULT_NAME",
    "QWEN_CODER_1_5B",
    "LlamaServerTransport",
    "LocalServer",
    "LocalTransport",
    "ModelWeights",
    "assemble",
    "available",
    "is_local",
    "llama_available",
    "llama_response_format",
    "model_dir",
    "model_file",
]
