"""One sandboxed call, as the caller sees it: send it to the worker, wait, read back.

However the call's process ends, ``run_confined`` returns a ``Reply``: the value, or
the exception to raise (the code's own, or a ``SandboxError`` saying what happened:
a timeout, an exit, a crash, a result that cannot cross). It never hangs past the
timeout, and it raises only for what the caller did wrong (an entry point that is
not a module-level function).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracegrad.sandbox import protocol
from tracegrad.sandbox.errors import SandboxError
from tracegrad.sandbox.settings import Sandbox
from tracegrad.sandbox.worker import Worker, restart, worker

_CRASHES = {
    signal.SIGSEGV: "a segmentation fault",
    signal.SIGBUS: "a bus error",
    signal.SIGILL: "an illegal instruction",
    signal.SIGFPE: "a floating-point exception",
    signal.SIGABRT: "an abort",
}
_GRACE = 2.0  # seconds to wait for the worker to confirm that a stopped call's process is gone


@dataclass
class Reply:
    """What a sandboxed call gave: its value, or the exception to raise; and ``extra``,
    the data the entry point returned with it."""

    value: Any = None
    error: BaseException | None = None
    extra: Any = None


Entry = Callable[[bytes], tuple[Any, BaseException | None, Any]]


def run_confined(
    entry: Entry, payload: bytes, settings: Sandbox, *, label: str, preload: tuple[str, ...] = ()
) -> Reply:
    """Run ``entry(payload)`` in a confined process under ``settings``.

    ``entry`` is a module-level function (found by name in the call's process); it
    returns ``(value, error, extra)``: the call's value or the exception it raised,
    and plain data for ``Reply.extra``. ``label`` names the call in messages;
    ``preload`` names modules the worker imports once, so that calls need not.
    """
    module, name = getattr(entry, "__module__", None), getattr(entry, "__qualname__", "")
    if not module or "." in name or "<" in name:
        raise TypeError(f"run_confined() needs a module-level function, got {entry!r}")
    if not hasattr(os, "fork") or not hasattr(os, "pidfd_open"):
        unsupported = SandboxError(
            f"this platform cannot run {label} in a sandbox (it needs Linux); run trusted code in-process: "
            "bundle(..., sandbox=False) or tracegrad.sandboxing(False)",
            reason="unsupported",
        )
        return Reply(error=unsupported)
    deadline = time.monotonic() + settings.timeout
    header = {
        "settings": settings,
        "environment": dict(os.environ),
        "entry": (module, name),
        "label": label,
        "preload": (module, *preload),
    }
    pipes = [os.pipe() for _ in range(3)]  # the payload, the result, the status
    theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
    try:
        try:
            where, number = _submit(header, theirs, settings.network)
        finally:
            for fd in theirs:
                os.close(fd)
        try:
            _write(pipes[0][1], payload, deadline)  # a process that ends before reading it all: its status says why
            os.close(pipes[0][1])
            pipes[0] = (-1, -1)
            return _collect(where, number, pipes[1][0], pipes[2][0], deadline, settings, label)
        except BaseException:  # a KeyboardInterrupt here, say: the call's process must not outlive the wait
            where.stop(number)
            raise
    except SandboxError as exc:
        return Reply(error=exc)
    finally:
        for fd in (pipes[0][1], pipes[1][0], pipes[2][0]):
            if fd >= 0:
                os.close(fd)


def _submit(header: dict, fds: list[int], network: bool) -> tuple[Worker, int]:
    """Hand a call to the worker, starting another once if it is gone; the worker and
    the call's number."""
    for attempt in (1, 2):
        try:
            where = worker(network)
            return where, where.submit(header, *fds)
        except OSError as exc:
            restart(network)
            if attempt == 2:
                raise SandboxError(f"the sandbox's worker process cannot be reached ({exc})", reason="start") from None
    raise AssertionError("unreachable")


def _write(fd: int, data: bytes, deadline: float) -> bool:
    """Write ``data`` before ``deadline``; False when the reader is gone or was too slow."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            return False
        try:
            view = view[os.write(fd, view) :]
        except BrokenPipeError:
            return False
    return True


class _Frames:
    """Frames read from one pipe: a length, then that many bytes."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd, self.limit = fd, limit
        self.data = bytearray()
        self.closed = False

    def read(self) -> None:
        chunk = os.read(self.fd, 1 << 20)
        self.closed = not chunk
        self.data += chunk

    def frame(self) -> bytes | None:
        if len(self.data) < protocol.HEADER.size:
            return None
        size = protocol.HEADER.unpack_from(self.data)[0]
        if size > self.limit:
            raise SandboxError("the sandboxed process sent back more than its memory limit", reason="transfer")
        end = protocol.HEADER.size + size
        return bytes(self.data[protocol.HEADER.size : end]) if len(self.data) >= end else None


def _collect(
    where: Worker, number: int, result_fd: int, status_fd: int, deadline: float, settings: Sandbox, label: str
) -> Reply:
    """Wait for the result, or for how the process ended, until the deadline."""
    result = _Frames(result_fd, max(settings.memory, 1 << 20))
    status = _Frames(status_fd, 1 << 16)
    poller = select.poll()
    for fd in (result_fd, status_fd):
        poller.register(fd, select.POLLIN)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            where.stop(number)
            _wait_closed(status, time.monotonic() + _GRACE)
            return Reply(error=_timeout(settings, label))
        for fd, _ in poller.poll(remaining * 1000):
            frames = result if fd == result_fd else status
            frames.read()
            if frames.closed:
                poller.unregister(fd)
        body = result.frame()
        if body is not None:
            return _reply(protocol.read_message(body), label)
        ended = status.frame()
        if ended is None and status.closed:  # the worker died during the call
            restart(settings.network)
            return Reply(error=SandboxError(f"the sandbox's worker stopped during {label}", reason="crash"))
        if ended is not None:
            _drain(result)
            body = result.frame()
            if body is not None:
                return _reply(protocol.read_message(body), label)
            return Reply(error=_ended(pickle.loads(ended), settings, label))


def _drain(frames: _Frames) -> None:
    """Read what is left in a pipe whose writer has exited (without blocking)."""
    with contextlib.suppress(OSError):
        while not frames.closed and select.select([frames.fd], [], [], 0)[0]:
            frames.read()


def _wait_closed(status: _Frames, until: float) -> None:
    """Wait (a little) for the worker to report that a stopped call's process is gone."""
    while status.frame() is None and not status.closed:
        remaining = until - time.monotonic()
        if remaining <= 0 or not select.select([status.fd], [], [], remaining)[0]:
            return
        status.read()


def _reply(message: protocol.Message, label: str) -> Reply:
    extra = message.header.get("extra")
    if message.kind in ("return", "unsendable"):
        try:
            return Reply(value=protocol.rebuilt_value(message, label), extra=extra)
        except SandboxError as exc:
            return Reply(error=exc, extra=extra)
    error = protocol.rebuilt_exception(message)
    if message.kind == "exit":
        error = _exit_error(error, message.header, label)
    return Reply(error=error, extra=extra)


def _exit_error(error: BaseException, header: dict, label: str) -> SandboxError:
    """A ``SandboxError`` for a ``BaseException`` that is not an ``Exception``."""
    if isinstance(error, SystemExit) or header.get("type") == "SystemExit":
        code = header.get("code")
        text = f"{label} called sys.exit({'' if code is None else repr(code)}): a function must return a value or "
        return SandboxError(text + "raise an exception instead", reason="exit")
    text = header.get("text")
    return SandboxError(f"{label} raised {header.get('type')}{f': {text}' if text else ''}", reason="interrupt")


def _timeout(settings: Sandbox, label: str) -> SandboxError:
    return SandboxError(
        f"{label} did not return within {settings.timeout:g} s and was stopped (an endless loop, or a wait "
        "that never ends?); the limit is tracegrad.sandboxing(timeout=...)",
        reason="timeout",
    )


def _ended(how: tuple[str, Any], settings: Sandbox, label: str) -> SandboxError:
    """The error for a process that ended without a result."""
    kind, code = how
    if kind == "start":
        return SandboxError(f"no process could be started for {label}: {code}", reason="start")
    if kind == "exit":
        return SandboxError(
            f"{label} ended its process with exit status {code} before returning (os._exit?): a function must "
            "return a value or raise an exception instead",
            reason="exit",
        )
    if code == signal.SIGXCPU:
        return SandboxError(
            f"{label} used more than {settings.cpu_seconds} s of CPU time and was stopped; the limit is "
            "tracegrad.sandboxing(cpu=...)",
            reason="cpu",
        )
    if code == signal.SIGKILL:
        return SandboxError(
            f"{label} was killed (SIGKILL), most likely for using too much memory "
            f"(the limit is {settings.memory / 2**20:g} MiB, tracegrad.sandboxing(memory=...))",
            reason="memory",
        )
    try:
        name = signal.Signals(code).name
    except ValueError:
        name = f"signal {code}"
    what = _CRASHES.get(code, "a signal")
    return SandboxError(f"{label} crashed: its process died of {what} ({name})", reason="crash")
