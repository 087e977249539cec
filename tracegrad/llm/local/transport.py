"""``LocalTransport``: a GGUF model run in this process by llama.cpp (llama-cpp-python).

The model file is loaded once per process and shared by every client and thread; one
request runs at a time (llama.cpp evaluates one sequence), the others wait their turn.
llama.cpp keeps the tokens of the previous request and evaluates only what differs
after their common prefix, so prompts whose fixed part comes first are cheap to send
again: the response reports those reused tokens as ``cached_prompt_tokens``.

Structured output is enforced by llama.cpp's JSON-schema grammar: a ``json_schema``
response format is sent as ``{"type": "json_object", "schema": ...}``, so the reply can
only be JSON of that schema and no schema text is needed in the prompt.

A request's timeout is a deadline checked at every generated token: a request past it
stops at once (nothing keeps running behind the caller's back) and is reported as a
timeout that is not retried, since the same request would take as long again.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tracegrad.llm.errors import LLMCallError, LLMConfigError
from tracegrad.llm.local.weights import QWEN_CODER_1_5B, ModelWeights, assemble
from tracegrad.llm.request import LLMRequest, Message, TransportResponse
from tracegrad.llm.tokens import message_text
from tracegrad.llm.transports import Transport

#: The model name of the embedded default (``local`` means the same).
PREFIX = "local"
#: Context window the model is loaded with (prompt and reply together).
DEFAULT_CONTEXT = 8192
#: Embedded models by short name.
EMBEDDED: dict[str, ModelWeights] = {QWEN_CODER_1_5B.name: QWEN_CODER_1_5B}
DEFAULT_NAME = f"{PREFIX}/{QWEN_CODER_1_5B.name}"

_SAMPLING = ("temperature", "top_p", "max_tokens", "seed", "stop")
_LOADED: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_LOADING = threading.Lock()


def is_local(model: str) -> bool:
    """Whether ``model`` names a model this transport runs (``local``, ``local/<name>``
    of an embedded model, or ``local/<path>.gguf``)."""
    return model == PREFIX or model.startswith(PREFIX + "/")


def model_file(model: str) -> Path:
    """The GGUF file of a local model name, assembling embedded weights on first use."""
    if not is_local(model):
        raise LLMConfigError(f"{model!r} is not a local model name (use 'local' or 'local/<file>.gguf')")
    rest = model[len(PREFIX) + 1 :] if model != PREFIX else QWEN_CODER_1_5B.name
    if rest in EMBEDDED:
        return assemble(EMBEDDED[rest])
    if rest.endswith(".gguf"):
        path = Path(rest).expanduser()
        if not path.is_file():
            raise LLMConfigError(f"the GGUF file {path} of model {model!r} does not exist")
        return path
    known = ", ".join(f"local/{n}" for n in EMBEDDED)
    raise LLMConfigError(f"unknown local model {model!r}: use one of {known}, or local/<path to a .gguf file>")


def llama_available() -> bool:
    """Whether llama-cpp-python is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LLMConfigError(
            "the local model needs llama-cpp-python: run `make local` in a checkout, or "
            "pip install 'tracegrad[local]' (see the README for a portable build)"
        ) from exc
    return llama_cpp


def _load(path: Path, n_ctx: int) -> tuple[Any, threading.Lock]:
    """The process's one loaded model for ``path`` (loaded on first use)."""
    key = (str(path.resolve()), n_ctx)
    with _LOADING:
        if key not in _LOADED:
            _import_llama()
            from tracegrad.llm.local.sampling import grammar_first_llama

            print(f"tracegrad: loading local model {path.name} ({path.stat().st_size >> 20} MB)", file=sys.stderr)
            model = grammar_first_llama()(
                model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False, seed=0
            )
            if not _LOADED:
                atexit.register(_close_all)
            _LOADED[key] = (model, threading.Lock())
        return _LOADED[key]


def _close_all() -> None:
    """Free the loaded models while the interpreter still works (llama.cpp's own
    finalizer fails when it runs during interpreter shutdown)."""
    with _LOADING:
        for model, lock in _LOADED.values():
            with lock:
                model.close()
        _LOADED.clear()


class _Deadline(Exception):
    """Raised between two tokens when a request runs past its timeout."""


def _deadline(timeout: float | None) -> Any:
    """A llama.cpp stopping criterion that ends generation at the deadline (by raising,
    so that a stopped reply is never mistaken for a finished one)."""
    end = None if timeout is None else time.monotonic() + timeout

    def check(input_ids: Any, logits: Any) -> bool:
        if end is not None and time.monotonic() > end:
            raise _Deadline
        return False

    return check


def _chat(model: Any, timeout: float | None) -> Any:
    """llama-cpp-python's chat completion handler for the model's own chat template,
    with the deadline among its stopping criteria (``create_chat_completion`` takes
    none); the model's default handler where its file has no template."""
    from llama_cpp import StoppingCriteriaList, llama_chat_format

    template = model.metadata.get("tokenizer.chat_template")
    if not template:
        return model.create_chat_completion
    eos = model.token_eos()
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=model.detokenize([eos], special=True).decode("utf-8", "replace"),
        bos_token=model.detokenize([model.token_bos()], special=True).decode("utf-8", "replace"),
        stop_token_ids=[eos],
    )
    deadline = _deadline(timeout)

    def format_with_deadline(**kwargs: Any) -> Any:
        result = formatter(**kwargs)
        result.stopping_criteria = StoppingCriteriaList([deadline, *(result.stopping_criteria or [])])
        return result

    handler = llama_chat_format.chat_formatter_to_chat_completion_handler(format_with_deadline)
    return lambda **kwargs: handler(llama=model, **kwargs)


def llama_response_format(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """An OpenAI ``response_format`` as llama.cpp takes it: a JSON schema becomes
    ``{"type": "json_object", "schema": ...}``, which llama.cpp enforces by grammar."""
    if response_format and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", **({"schema": schema} if schema else {})}
    return response_format


class LocalTransport(Transport):
    """Runs ``local`` models in process with llama.cpp; see the module docstring.

    Args:
        n_ctx: the context window to load models with (prompt plus reply tokens).
    """

    #: A long code reply decodes for minutes on a small CPU.
    default_timeout = 900.0

    def __init__(self, *, n_ctx: int = DEFAULT_CONTEXT) -> None:
        self.n_ctx = n_ctx

    def complete(self, request: LLMRequest) -> TransportResponse:
        """Answer one request with the local model (waits while another one runs)."""
        model, lock = _load(model_file(request.model), self.n_ctx)
        kwargs: dict[str, Any] = {k: request.params[k] for k in _SAMPLING if request.params.get(k) is not None}
        unknown = sorted(set(request.params) - set(_SAMPLING))
        if unknown:
            raise LLMCallError(f"the local model does not take the settings {', '.join(unknown)}", kind="bad_request")
        started = time.perf_counter()
        with lock:
            before = model._input_ids.tolist()
            try:
                out = _chat(model, request.timeout)(
                    messages=request.messages,
                    response_format=llama_response_format(request.response_format),
                    **kwargs,
                )
            except _Deadline:
                raise LLMCallError(
                    f"the local model did not finish within the timeout of {request.timeout:g} s; it was "
                    "stopped (raise LLM(timeout=...) or lower max_tokens)",
                    kind="timeout",
                    retryable=False,
                ) from None
            prompt_tokens = int(out["usage"]["prompt_tokens"])
            after = model._input_ids[:prompt_tokens].tolist()
        # llama.cpp evaluates at least the prompt's last token, even when all of it matches
        cached = min(model.longest_token_prefix(before, after), max(prompt_tokens - 1, 0))
        choice = out["choices"][0]
        return TransportResponse(
            text=choice["message"].get("content") or "",
            model=request.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=int(out["usage"]["completion_tokens"]),
            cached_prompt_tokens=cached,
            cost_usd=0.0,
            finish_reason=choice.get("finish_reason"),
            raw={"usage": out["usage"], "seconds": round(time.perf_counter() - started, 3)},
        )

    def structured_mode(self, model: str, api_base: str | None) -> str:
        """``json_schema``: llama.cpp enforces schemas by grammar."""
        return "json_schema"

    def count_tokens(self, model: str, content: str | list[Message]) -> tuple[int, bool]:
        """The model's own tokenizer (exact for text; messages add their chat template)."""
        llama, lock = _load(model_file(model), self.n_ctx)
        text = content if isinstance(content, str) else message_text(content)
        with lock:
            tokens = llama.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False)
        return len(tokens), not isinstance(content, str)

    def price(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """A local model costs no dollars."""
        return 0.0
