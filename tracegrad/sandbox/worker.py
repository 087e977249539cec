"""The sandbox's worker: a warm process that forks one confined process per call.

The worker is a fork of the caller, made on the first sandboxed call, so it holds
every module the caller had imported; it makes the namespaces once and then only
forks (``tracegrad.sandbox.serve``). Forking the caller at each call would cost the
caller itself: after a fork, each page it writes to faults (and is copied while the
child lives), so the caller forks once and the worker forks per call.

A call has three pipes: the payload goes in on the first (read by the call's
process, never by the worker), the call's process writes its result on the second,
and the worker writes on the third how the process ended once it has reaped it.
The worker keeps a spare process or two, already forked and confined, and hands
the caller a socket to each: the caller gives a call straight to a spare (a header
with the call's settings, and the first two pipes), then tells the worker which
spare took it (with the third pipe). With no spare at hand, the caller sends the
call to the worker, which forks for it. The worker never unpickles anything but the
caller's messages, and never runs the caller's code.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import logging
import os
import pickle
import shutil
import socket
import tempfile
import threading
import warnings
from typing import Any

from tracegrad.sandbox.errors import SandboxError
from tracegrad.sandbox.limits import Baseline, plan
from tracegrad.sandbox.namespaces import SandboxSupport
from tracegrad.sandbox.serve import MAX_MESSAGE, serve

log = logging.getLogger("tracegrad.sandbox")
# Forking a process with threads (JAX's, an executor's) is what the sandbox does on purpose: the
# worker and the calls' processes never use those threads (see docs/sandbox.md).
_OURS = r"tracegrad\.sandbox\."
warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning, module=_OURS)
warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning, module=_OURS)


class Worker:
    """The caller's handle on a worker process (one per process, and per network setting)."""

    def __init__(self, network: bool) -> None:
        self.owner = os.getpid()
        self.network = network
        self._lock = threading.Lock()
        self._calls = 0
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        base = tempfile.mkdtemp(prefix="tracegrad-sandbox-")
        if os.geteuid() == 0:
            os.chmod(base, 0o711)  # the unprivileged user reaches its own directory only
        self.base = base
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the caller's code
            status = 1
            try:
                ours.close()
                serve(theirs, base, network)
                status = 0
            finally:
                os._exit(status)
        theirs.close()
        self.pid = pid
        self.socket = ours
        hello = ours.recv(MAX_MESSAGE)
        atexit.register(self.close)
        if not hello:
            self.close()
            raise SandboxError("the sandbox's worker process did not start", reason="start")
        self.facts: Baseline = pickle.loads(hello)
        self.support: SandboxSupport = self.facts.support
        if not (self.support.network and self.support.read_only):
            log.warning("tracegrad's sandbox isolates less on this machine: %s", "; ".join(self.support.notes))
        self._spares: list[tuple[int, str, socket.socket]] = []  # (pid, working directory, socket)
        self._loaded: set[str] = set()  # modules the worker imported for calls (spares have them)

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.socket.fileno() >= 0

    def submit(self, header: dict[str, Any], payload_fd: int, result_fd: int, status_fd: int) -> int:
        """Start a call: to a spare, else through the worker; the call's number."""
        with self._lock:
            self._calls += 1
            number = self._calls
            header = {**header, "call": number}
            self._collect_spares()
            if set(header["preload"]) <= self._loaded:
                while self._spares:
                    pid, workdir, link = self._spares.pop()
                    steps = plan(header["settings"], workdir, header["environment"], self.facts)
                    try:
                        socket.send_fds(link, [pickle.dumps((header, steps))], [payload_fd, result_fd])
                    except OSError:  # that spare is gone
                        self._tell(("discard", pid))
                        continue
                    finally:
                        link.close()
                    self._tell(("started", {"call": number, "pid": pid}), [status_fd])
                    return number
            self._loaded |= set(header["preload"])
            self._tell(("call", header), [payload_fd, result_fd, status_fd])
            return number

    def _tell(self, message: tuple, fds: list[int] | None = None) -> None:
        socket.send_fds(self.socket, [pickle.dumps(message)], fds or [])

    def _collect_spares(self) -> None:
        """Take the spares the worker has offered since last time (without waiting)."""
        room = socket.CMSG_LEN(array.array("i").itemsize)
        while True:
            try:  # socket.recv_fds would wait: it does not pass its flags on before Python 3.12
                message, ancillary, _, _ = self.socket.recvmsg(MAX_MESSAGE, room, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if not message:
                raise ConnectionError("the sandbox's worker closed its socket")
            fds = array.array("i")
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            _, pid, workdir = pickle.loads(message)  # ("spare", pid, working directory)
            self._spares.append((pid, workdir, socket.socket(fileno=fds[0])))

    def stop(self, number: int) -> None:
        """Kill call ``number``'s process (and its process group), if it still runs."""
        with contextlib.suppress(OSError):
            self.socket.send(pickle.dumps(("kill", number)))

    def close(self) -> None:
        """Stop the worker (it kills the calls still running) and remove its directory."""
        if self.owner != os.getpid():  # a process forked from the owner: the worker is not its
            return
        for _, _, link in self._spares:
            link.close()
        self._spares = []
        with contextlib.suppress(OSError):
            self.socket.close()
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, 0)
        shutil.rmtree(self.base, ignore_errors=True)


_workers: dict[bool, Worker] = {}
_workers_lock = threading.Lock()


def worker(network: bool = False) -> Worker:
    """This process's worker for calls with (or without) network, started on first use."""
    with _workers_lock:
        found = _workers.get(network)
        if found is None or not found.alive():
            found = _workers[network] = Worker(network)
        return found


def restart(network: bool) -> None:
    """Forget this process's worker (it died): the next call starts another."""
    with _workers_lock:
        found = _workers.pop(network, None)
    if found is not None:
        found.close()
