"""The worker process: start each call in a confined process, stop it, say how it ended.

Processes are forked ahead of calls (*spares*) and confined as far as they can be
without one; the worker offers each to the caller, which gives it a call directly (a
fork of a large process takes milliseconds, and so does each hop through another
process). The worker forks spares while no call runs, so that forking never slows
one down; a call that finds no spare is sent to the worker, which forks for it.

The worker is the subreaper of every process a call starts: a process whose parent
died becomes the worker's child, so the worker finds, kills and reaps whatever a call
left behind, even a process that left the call's process group.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import select
import shutil
import signal
import socket
import sys

from tracegrad.sandbox import child, protocol
from tracegrad.sandbox.limits import Baseline, baseline, plan
from tracegrad.sandbox.namespaces import LINUX, check, isolate, libc

MAX_MESSAGE = 1 << 20
SPARES = 2  # spares offered to the caller at a time
_PR_SET_CHILD_SUBREAPER = 36
_SWEEP_MS = 250  # how often the worker looks for processes that calls left behind


class _Calls:
    """The worker's state: the calls running, and the spares offered."""

    def __init__(self, sock: socket.socket, base: str, facts: Baseline) -> None:
        self.sock, self.base, self.facts = sock, base, facts
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)
        self.running: dict[int, tuple[int, int, str]] = {}  # pidfd -> (pid, status pipe, working directory)
        self.numbers: dict[int, int] = {}  # call number -> pid
        self.offered: dict[int, tuple[int, str]] = {}  # spare pid -> (pidfd, working directory)
        self.exited: dict[int, tuple[int, str]] = {}  # spare pid -> (wait status, working directory): ended unreported
        self.made = 0
        self.ready = False  # whether a call's modules are imported (spares are worth having)

    # -- calls sent to the worker ------------------------------------------------------
    def start(self, header: dict, fds: list[int]) -> None:
        """Fork a process for a call that found no spare."""
        payload_fd, result_fd, status_fd = fds
        workdir = os.path.join(self.base, f"call-{header['call']}")
        try:
            self._preload(header["preload"])
            self._workdir(workdir)
            steps = plan(header["settings"], workdir, header["environment"], self.facts)
            pid = os.fork()
        except (OSError, ImportError) as exc:
            _report(status_fd, ("start", str(exc)))
            for fd in (payload_fd, result_fd):
                os.close(fd)
            shutil.rmtree(workdir, ignore_errors=True)
            return
        if pid == 0:
            status = 70
            try:
                child.run_forked(header, steps, self.facts, payload_fd, result_fd)
                status = 0
            finally:
                os._exit(status)
        os.close(payload_fd)
        os.close(result_fd)
        self._run(header["call"], pid, os.pidfd_open(pid), status_fd, workdir)

    def _preload(self, names: tuple[str, ...]) -> None:
        missing = [name for name in names if name not in sys.modules]
        for name in missing:  # once here, rather than in every call's process
            importlib.import_module(name)
        if missing:
            gc.freeze()
            for pid in list(self.offered):  # forked before these imports: each call would import them again
                _kill(pid)
        self.ready = True

    def _workdir(self, path: str) -> None:
        os.mkdir(path, 0o700)
        if self.facts.run_as is not None:
            os.chown(path, *self.facts.run_as)

    def _run(self, number: int, pid: int, pidfd: int, status_fd: int, workdir: str) -> None:
        self.running[pidfd] = (pid, status_fd, workdir)
        self.numbers[number] = pid
        self.poller.register(pidfd, select.POLLIN)

    # -- spares ------------------------------------------------------------------------
    def make_spare(self) -> None:
        """Fork a spare and offer it to the caller."""
        self.made += 1
        workdir = os.path.join(self.base, f"spare-{self.made}")
        self._workdir(workdir)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            status = 70
            try:
                ours.close()
                child.run_spare(theirs, self.facts)
                status = 0
            finally:
                os._exit(status)
        theirs.close()
        pidfd = os.pidfd_open(pid)
        self.offered[pid] = (pidfd, workdir)
        self.poller.register(pidfd, select.POLLIN)
        socket.send_fds(self.sock, [pickle.dumps(("spare", pid, workdir))], [ours.fileno()])
        ours.close()

    def started(self, detail: dict, fds: list[int]) -> None:
        """The caller gave a call to spare ``pid``: its status goes to ``fds[0]``."""
        pid, status_fd = detail["pid"], fds[0]
        if pid in self.offered:
            pidfd, workdir = self.offered.pop(pid)
            self._run(detail["call"], pid, pidfd, status_fd, workdir)
        elif pid in self.exited:  # it has ended already
            status, workdir = self.exited.pop(pid)
            _report(status_fd, _how(status))
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            _report(status_fd, ("start", "the spare process is gone"))

    def discard(self, pid: int) -> None:
        """The caller found spare ``pid`` gone (or will not use it)."""
        if pid in self.offered:
            _kill(pid)  # its end is reaped as any spare's
        elif pid in self.exited:
            shutil.rmtree(self.exited.pop(pid)[1], ignore_errors=True)

    # -- ends --------------------------------------------------------------------------
    def ended(self, pidfd: int) -> None:
        """A process has exited: a call's (report it), or a spare's (keep its status)."""
        self.poller.unregister(pidfd)
        if pidfd not in self.running:
            pid = next(p for p, (fd, _) in self.offered.items() if fd == pidfd)
            _, workdir = self.offered.pop(pid)
            self.exited[pid] = (_reap(pid, pidfd), workdir)
            return
        pid, status_fd, workdir = self.running.pop(pidfd)
        _kill(pid)  # what is left of its process group
        _report(status_fd, _how(_reap(pid, pidfd)))
        shutil.rmtree(workdir, ignore_errors=True)
        self.numbers = {n: p for n, p in self.numbers.items() if p != pid}

    def pids(self) -> set[int]:
        return {pid for pid, _, _ in self.running.values()} | set(self.offered)

    def close(self) -> None:
        """The caller is gone: so are its calls and spares."""
        for pid, _, workdir in self.running.values():
            _kill(pid)
            shutil.rmtree(workdir, ignore_errors=True)
        for pid, (_, workdir) in self.offered.items():
            _kill(pid)
            shutil.rmtree(workdir, ignore_errors=True)
        _sweep(set())


def serve(sock: socket.socket, base: str, network: bool) -> None:
    """The worker's loop: start calls, kill them when asked, report how each ended, and
    kill what they left behind. Returns when the caller closes its socket."""
    gc.freeze()  # a collection would touch, and so copy, every page of the caller's objects
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the caller's to handle
    os.setpgid(0, 0)
    _close_inherited(keep={sock.fileno()})
    if LINUX:  # orphans of the calls' processes become the worker's children, not init's
        check(libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
    facts = baseline(isolate(base, network=network))
    calls = _Calls(sock, base, facts)
    sock.send(pickle.dumps(facts))
    while True:
        for fd, _ in calls.poller.poll(_SWEEP_MS):
            if fd != sock.fileno():
                calls.ended(fd)
                continue
            message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 3)
            if not message:
                calls.close()
                return
            kind, detail = pickle.loads(message)
            if kind == "call":
                calls.start(detail, fds)
            elif kind == "started":
                calls.started(detail, fds)
            elif kind == "discard":
                calls.discard(detail)
            elif kind == "kill" and detail in calls.numbers:
                _kill(calls.numbers[detail])
        if calls.ready and not calls.running:  # forking now would slow a running call down
            while len(calls.offered) < SPARES:
                calls.make_spare()
        _sweep(calls.pids())


def _sweep(calls: set[int]) -> None:
    """Kill and reap the processes that calls left behind. The worker is their
    subreaper, so a process whose parent died is now its child: one still in the
    process group of a running call is that call's; any other is a leftover (it left
    its call's group, with ``setsid``, or its call has ended)."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children", encoding="ascii") as listing:
            children = [int(pid) for pid in listing.read().split()]
    except OSError:
        return
    for pid in children:
        if pid in calls:
            continue
        try:
            group = os.getpgid(pid)
        except OSError:
            group = None
        if group not in calls:
            _kill(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _close_inherited(keep: set[int]) -> None:
    """Close every descriptor the worker inherited but stdin, stdout, stderr and ``keep``:
    holding the caller's files, sockets and pipes open would change what the caller sees."""
    for name in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _reap(pid: int, pidfd: int) -> int:
    os.close(pidfd)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


def _how(status: int) -> tuple[str, int]:
    return ("exit", os.WEXITSTATUS(status)) if os.WIFEXITED(status) else ("signal", os.WTERMSIG(status))


def _report(fd: int, how: tuple[str, object]) -> None:
    """Write how a call's process ended on its status pipe, and close it."""
    with contextlib.suppress(OSError):
        view = memoryview(protocol.frame(pickle.dumps(how)))
        while view:
            view = view[os.write(fd, view) :]
    os.close(fd)
