"""A call's process: confined, it reads the payload, runs the entry point, sends the result.

A spare (``run_spare``) confines itself before it is given a call; a process forked
for a call (``run_forked``) does it all at once. Either way the call's own settings
(working directory, environment, limits) are set once the call is known.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import os
import pickle
import socket
import sys

from tracegrad.sandbox import protocol
from tracegrad.sandbox.errors import SandboxError
from tracegrad.sandbox.limits import Baseline, Plan, confine_call, confine_process

_MAX_HEADER = 1 << 20
_inside = False


def inside_sandbox() -> bool:
    """Whether this process is a sandboxed call's (nested calls then run in it directly)."""
    return _inside


def run_spare(link: socket.socket, facts: Baseline) -> None:
    """Confine this process, wait on ``link`` for a call, and run it."""
    gc.freeze()  # a collection would touch, and so copy, every page of the worker's objects
    confine_process(facts, keep={link.fileno()})
    message, fds, _, _ = socket.recv_fds(link, _MAX_HEADER, 2)
    link.close()
    if message and len(fds) == 2:
        header, steps = pickle.loads(message)  # from the worker
        _run(header, steps, *fds)


def run_forked(header: dict, steps: Plan, facts: Baseline, payload_fd: int, result_fd: int) -> None:
    """Confine this process, forked for the call, and run it."""
    gc.freeze()
    confine_process(facts, keep={payload_fd, result_fd})
    _run(header, steps, payload_fd, result_fd)


def _run(header: dict, steps: Plan, payload_fd: int, result_fd: int) -> None:
    """Read the payload, set the call's settings, run the entry point, send the result."""
    global _inside
    payload = _read_all(payload_fd)
    os.close(payload_fd)
    try:
        confine_call(steps)
    except BaseException as exc:
        error = SandboxError(f"the sandbox could not be set up for this call: {exc}", reason="start")
        _write(result_fd, protocol.encode_raise(error, None))
        return
    _inside = True
    _own_output()
    module, name = header["entry"]
    value, error, extra = None, None, None
    try:
        value, error, extra = getattr(importlib.import_module(module), name)(payload)
    except BaseException as exc:  # the entry point's own failure (its payload could not be read ...)
        error = exc
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if error is None:
        _write(result_fd, protocol.encode_return(value, extra))
        return
    if isinstance(error, MemoryError) and not str(error):
        memory = header["settings"].memory
        error.args = (f"out of memory: a sandboxed call may add at most {memory / 2**20:g} MiB",)
    _write(result_fd, protocol.encode_raise(error, extra))


def _own_output() -> None:
    """Print to this process's stdout and stderr. The caller's ``sys.stdout`` may be
    another object (a test's capture, a notebook's stream) whose descriptor or socket
    this process does not have."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        with contextlib.suppress(OSError):
            stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="replace")
            stream.reconfigure(line_buffering=True)
            setattr(sys, name, stream)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
