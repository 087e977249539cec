"""The namespaces the sandbox's worker process makes once, for every call it forks.

Making namespaces is slow (a network namespace, and a mount namespace with every
mount made read-only: about 10 ms), so the worker makes them once, when it starts,
and each call's process, forked from it, is born inside them. As root the worker
makes a network and a mount namespace (calls then run as an unprivileged user); as
another user it makes a user namespace first, which owns the others. What the
platform does not allow is left out and said in ``SandboxSupport.notes``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys
from dataclasses import dataclass, field

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MS_OPTIONS = {"nosuid": _MS_NOSUID, "nodev": _MS_NODEV, "noexec": _MS_NOEXEC, "noatime": 1024,
               "nodiratime": 2048, "relatime": 1 << 21}  # fmt: skip
#: The unprivileged user sandboxed calls of a root process run as.
NOBODY = 65534
LINUX = sys.platform.startswith("linux")


@dataclass(frozen=True)
class SandboxSupport:
    """What the sandbox can do on this machine, as the caller is set up to run it.

    ``process``: calls run in a process of their own (needs ``os.fork``);
    ``network``: with no network; ``read_only``: with every file system read-only
    but their working directory; ``other_user``: as an unprivileged user, not the
    caller's; ``process_limit``: with a limit on processes that holds.
    ``notes`` says what is missing and why.
    """

    process: bool
    network: bool
    read_only: bool
    other_user: bool
    process_limit: bool
    notes: tuple[str, ...] = field(default=())


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, for the system calls Python does not wrap (looked up once, before any fork)."""
    return ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    """Raise ``OSError`` for a failed C call."""
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mounts() -> list[tuple[str, set[str]]]:
    """(mount point, options) of every mount, from /proc/self/mountinfo, outermost first."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as lines:
        for line in lines:
            parts = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4])  # "\040" is a space
            found.append((point, set(parts[5].split(","))))
    return found


def _read_only_except(keep: str) -> list[str]:
    """In a new mount namespace: make every mount read-only but ``keep``; the mount
    points that could not be changed."""
    c = libc()
    check(c.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    check(c.mount(keep.encode(), keep.encode(), None, _MS_BIND | _MS_REC, None), f"mount --bind {keep}")
    failed = []
    for point, options in _mounts():
        if point == keep or point.startswith(keep.rstrip("/") + "/"):
            continue
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
        for option in options:
            flags |= _MS_OPTIONS.get(option, 0)  # a remount must keep these (locked in a user namespace)
        if c.mount(None, point.encode(), None, flags, None) != 0:
            failed.append(point)
    return failed


def isolate(keep: str, *, network: bool) -> SandboxSupport:
    """Move the calling process (the worker) into new namespaces, as far as the platform
    allows: no network (unless ``network``), every mount read-only but ``keep``. Says
    what holds, and what does not and why."""
    privileged = os.geteuid() == 0
    notes: list[str] = []
    if not privileged:
        notes.append("not root: the code runs as the caller's user, and can read that user's other processes")
    isolated = mounted = read_only = user = False
    if LINUX:
        user_flag = 0 if privileged else CLONE_NEWUSER
        net_flag = 0 if network else CLONE_NEWNET
        for flags in (user_flag | net_flag | CLONE_NEWNS, user_flag | net_flag):
            if flags and libc().unshare(flags) == 0:
                isolated, mounted, user = bool(net_flag), bool(flags & CLONE_NEWNS), bool(user_flag)
                break
            if flags:
                notes.append(f"unshare({flags:#x}) failed: {os.strerror(ctypes.get_errno())}")
        if user:  # the caller's own ids, mapped to themselves
            uid, gid = os.getuid(), os.getgid()
            for path, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{path}", "w") as out:
                    out.write(text)
        if mounted:
            try:
                failed = _read_only_except(keep)
                read_only = "/" not in failed
                if failed:
                    notes.append("these mounts stay writable: " + ", ".join(failed))
            except OSError as exc:
                notes.append(f"no read-only mounts: {exc}")
    else:
        notes.append(f"{sys.platform}: no namespaces, so the code has the network and the caller's file rights")
    # a process limit counts the processes of a user: the sandbox's own, or those in its user namespace
    limited = privileged or user
    if not limited:
        notes.append("no process limit: it would count every process of the caller's user")
    return SandboxSupport(
        process=True,
        network=isolated,
        read_only=read_only,
        other_user=privileged,
        process_limit=limited,
        notes=tuple(notes),
    )
