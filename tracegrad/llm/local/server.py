"""llama.cpp's OpenAI-compatible server for a local model, for tools that speak HTTP.

``LLM()`` runs the embedded model in process and needs no server. A server is for
sharing one loaded model with other programs (another library's optimizer, a shell
``curl``): :class:`LocalServer` starts ``llama_cpp.server`` (with this package's
grammar sampling, ``tracegrad.llm.local.serve``) on 127.0.0.1 on a free
port, waits until it answers, and stops it when the ``with`` block or the process
ends (on Linux the server also dies with its parent, even a killed one).

Calls to it still go through the one client: ``server.llm()`` is an ``LLM`` whose
transport (:class:`LlamaServerTransport`) sends JSON schemas the way llama.cpp's
server enforces them, sends one request at a time (the server evaluates one anyway,
so a request's timeout never counts another's turn), and never retries a timed-out
request, which the server would still be working on.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracegrad.llm.errors import LLMCallError, LLMConfigError
from tracegrad.llm.litellm_transport import LiteLLMTransport
from tracegrad.llm.local.transport import DEFAULT_CONTEXT, llama_response_format, model_file
from tracegrad.llm.request import LLMRequest, TransportResponse
from tracegrad.llm.retry import classify
from tracegrad.llm.transports import Transport


class LlamaServerTransport(LiteLLMTransport):
    """litellm to a llama.cpp server: schemas as ``{"type": "json_object", "schema":
    ...}`` (the server refuses ``json_schema``), one request at a time, timeouts not
    retried."""

    default_timeout = 900.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._one_at_a_time = threading.Lock()

    def _call_kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kwargs = super()._call_kwargs(request)
        if "response_format" in kwargs:
            kwargs["response_format"] = llama_response_format(kwargs["response_format"])
        return kwargs

    def complete(self, request: LLMRequest) -> TransportResponse:
        with self._one_at_a_time:
            try:
                response = super().complete(request)
            except Exception as exc:
                raise _not_retried_if_timeout(exc) from exc
        return replace(response, cost_usd=0.0)  # a local model costs no dollars

    # in a worker thread, so that async calls take their turn at the lock too
    acomplete = Transport.acomplete

    def structured_mode(self, model: str, api_base: str | None) -> str:
        return "json_schema"

    def price(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        return 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_one_at_a_time"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._one_at_a_time = threading.Lock()


def _not_retried_if_timeout(exc: Exception) -> Exception:
    kind, _, status = classify(exc)
    if kind != "timeout":
        return exc
    return LLMCallError(
        f"the local server did not answer within the timeout ({type(exc).__name__}); it is not asked again "
        "while it may still be working on the request (raise LLM(timeout=...) or lower max_tokens)",
        kind="timeout",
        retryable=False,
        status_code=status,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child before exec
    # SIGKILL, not SIGTERM: the server shuts down gracefully on SIGTERM, which means
    # finishing the reply it is decoding, minutes for a long one, with nobody to read it
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class LocalServer:
    """llama.cpp's OpenAI-compatible server for a local model (see the module docstring).

    Args:
        model: a local model name (``local``, ``local/<path>.gguf``).
        n_ctx: the context window the server loads the model with.
        alias: the model name the server answers to.
        startup_timeout: seconds to wait for the server to answer its health check.
    """

    def __init__(
        self,
        model: str = "local",
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        alias: str = "local",
        startup_timeout: float = 300.0,
    ) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.alias = alias
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def api_base(self) -> str:
        """The server's OpenAI-compatible base URL."""
        if self.port is None:
            raise LLMConfigError("the local server is not running: call start() or use it in a with block")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalServer:
        """Start the server and wait until it answers (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            return self
        path = model_file(self.model)
        try:
            import llama_cpp.server  # noqa: F401  (its web dependencies come with the extra)
        except ImportError as exc:
            raise LLMConfigError(
                "the local server needs llama-cpp-python[server]: pip install 'tracegrad[local]'"
            ) from exc
        self.port = _free_port()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (open for the server's life; closed by stop)
        command = [
            sys.executable, "-m", "tracegrad.llm.local.serve",
            "--model", str(path), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(os.cpu_count() or 1),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        atexit.register(self.stop)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        process = self.process
        assert process is not None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = self._output()
                self.stop()
                raise LLMConfigError(f"the local server exited with code {process.returncode}: {output}")
            try:
                with urllib.request.urlopen(f"{self.api_base}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise LLMConfigError(f"the local server did not answer within {self.startup_timeout:g} s")

    def _output(self, chars: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-chars:]

    def llm(self, **kwargs: Any) -> Any:
        """A client of this server (keyword arguments as for ``LLM``)."""
        from tracegrad.llm.client import LLM

        kwargs.setdefault("transport", LlamaServerTransport())
        return LLM(f"openai/{self.alias}", api_base=self.api_base, api_key="none", **kwargs)

    def stop(self) -> None:
        """Stop the server (idempotent): terminate, then kill if it does not exit."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on {self.api_base}" if self.process is not None else "stopped"
        return f"LocalServer({Path(str(self.model)).name!r}, {state})"
