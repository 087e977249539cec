"""What a call's process does to confine itself: limits, user, environment, files.

The process is born in the worker's namespaces (``tracegrad.sandbox.namespaces``).
``plan`` works out the rest before the fork, in the worker; ``confine`` runs in the
call's process and mostly makes system calls, because every Python object a forked
process touches costs it a copied page of memory. docs/sandbox.md says what each
step protects against.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import tempfile
from dataclasses import dataclass

from tracegrad.sandbox.namespaces import LINUX, NOBODY, SandboxSupport, check, libc
from tracegrad.sandbox.settings import Sandbox

_PR_SET_PDEATHSIG, _PR_SET_KEEPCAPS, _PR_SET_NO_NEW_PRIVS = 1, 8, 38
_CAP_DAC_READ_SEARCH = 2
_SLACK = 64 << 20  # address space for the call's own machinery (reading its payload, sending its result)

#: Words in an environment variable's name that mark it as a credential.
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "AUTH", "COOKIE",
                "PRIVATE", "SESSION")  # fmt: skip
#: Prefixes of the variables of model providers and cloud platforms, all removed.
PROVIDER_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCP_", "GCLOUD_", "OPENAI_", "ANTHROPIC_", "COHERE_",
                     "MISTRAL_", "GROQ_", "TOGETHER", "HF_", "HUGGING", "REPLICATE_", "DEEPSEEK", "GEMINI_",
                     "VERTEX", "XAI_", "PERPLEXITY", "FIREWORKS", "OPENROUTER", "AI21_", "VOYAGE_", "LITELLM_",
                     "LANGCHAIN_", "LANGSMITH_", "WANDB_", "GITHUB_", "GH_", "GITLAB_", "DATABRICKS_")  # fmt: skip


def is_secret(name: str, value: str = "") -> bool:
    """Whether an environment variable is kept from sandboxed code: its name says it
    is a credential or belongs to a provider, or its value is a URL with a password."""
    upper = name.upper()
    if any(word in upper for word in SECRET_WORDS) or upper.startswith(PROVIDER_PREFIXES):
        return True
    _, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0]
    return bool(sep) and "@" in host and ":" in host.split("@", 1)[0]  # scheme://user:password@host


@dataclass(frozen=True)
class Baseline:
    """What the worker finds out once, for every call's process."""

    support: SandboxSupport
    parent: int  # the worker's process id
    address_space: int  # the worker's virtual memory size: each call's process starts with it
    blanks: tuple[tuple[int, int], ...]  # (address, length) of the credentials in the initial environment block
    run_as: tuple[int, int] | None  # the unprivileged user and group calls run as, when the worker is root
    drop_capabilities: bool  # in a user namespace: a process there has every capability inside it


def baseline(support: SandboxSupport) -> Baseline:
    """The worker's baseline, found out where it stands now."""
    privileged = os.geteuid() == 0
    return Baseline(
        support=support,
        parent=os.getpid(),
        address_space=_address_space(),
        blanks=_initial_credentials() if LINUX else (),
        run_as=(NOBODY, NOBODY) if privileged else None,
        drop_capabilities=not privileged and LINUX,
    )


@dataclass(frozen=True)
class Plan:
    """What one call's process sets before running the call, worked out by the worker."""

    workdir: str
    environment: dict[str, str]
    blanks: tuple[tuple[int, int], ...]
    limits: tuple[tuple[int, int, int], ...]


def plan(settings: Sandbox, workdir: str, environment: dict[str, str], base: Baseline) -> Plan:
    """The plan of a call under ``settings`` in ``workdir``; ``environment`` is the
    caller's, whose credentials are left out."""
    cpu = settings.cpu_seconds
    limits = [
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, settings.file_size, settings.file_size),
    ]
    if base.support.process_limit:
        limits.append((resource.RLIMIT_NPROC, settings.processes, settings.processes))
    if base.address_space:  # a limit on what the call adds: its process starts with the worker's address space
        room = base.address_space + _SLACK + settings.memory
        limits.append((resource.RLIMIT_AS, room, room))
    capped = []
    for which, soft, hard in limits:
        _, current = resource.getrlimit(which)
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        capped.append((which, soft, hard))
    kept = {name: value for name, value in environment.items() if not is_secret(name, value)}
    kept["HOME"] = kept["TMPDIR"] = workdir
    return Plan(workdir=workdir, environment=kept, blanks=base.blanks, limits=tuple(capped))


def _address_space() -> int:
    """This process's virtual memory size in bytes (0 where it cannot be read)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _initial_credentials() -> tuple[tuple[int, int], ...]:
    """Where the credentials are in this process's initial environment block, which
    the kernel shows in /proc/self/environ whatever ``os.environ`` holds now."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start and env_end (fields 50 and 51)
    except (OSError, IndexError, ValueError):
        return ()
    found, offset = [], 0
    for entry in ctypes.string_at(start, end - start).split(b"\0"):
        name, _, value = entry.partition(b"=")
        if is_secret(name.decode("utf-8", "replace"), value.decode("utf-8", "replace")):
            found.append((start + offset, len(entry)))
        offset += len(entry) + 1
    return tuple(found)


def confine_process(base: Baseline, keep: set[int]) -> None:
    """Confine the calling process, a fork of the worker, before it is given a call:
    its own process group, no descriptor but ``keep`` (and stdout, stderr), the
    unprivileged user, no way to gain privileges. Raises ``OSError``."""
    os.setpgid(0, 0)
    if LINUX:
        check(libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != base.parent:  # the worker is gone already
            os._exit(1)
    _close_descriptors(keep)
    if base.run_as is not None:  # root: become the unprivileged user, still able to read what root reads
        uid, gid = base.run_as
        if LINUX:
            check(libc().prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if LINUX:
            _set_capabilities(1 << _CAP_DAC_READ_SEARCH)
    elif base.drop_capabilities:
        _set_capabilities(0)
    if LINUX:
        check(libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def confine_call(p: Plan) -> None:
    """Set what is particular to one call: its working directory, environment and limits
    (only ever lowered, which an unprivileged process may do). Raises ``OSError``."""
    os.chdir(p.workdir)
    _set_environment(p.environment, p.blanks)
    for which, soft, hard in p.limits:
        with contextlib.suppress(OSError, ValueError):  # a limit this platform does not have
            resource.setrlimit(which, (soft, hard))


def _close_descriptors(keep: set[int]) -> None:
    """Close every descriptor but stdout, stderr and ``keep`` (the worker's, and the
    pipes of other calls), and read stdin from /dev/null."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(os.sysconf("SC_OPEN_MAX"), low))


def _set_environment(environment: dict[str, str], blanks: tuple[tuple[int, int], ...]) -> None:
    """Make the environment exactly ``environment``, and zero the credentials in the
    initial block (at ``blanks``)."""
    for name in [n for n in os.environ if n not in environment]:
        del os.environ[name]
    for name, value in environment.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    tempfile.tempdir = environment["TMPDIR"]
    for address, length in blanks:
        ctypes.memset(address, 0, length)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _set_capabilities(mask: int) -> None:
    """Keep only the capabilities in ``mask`` (the first 32), effective and permitted."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask
    check(libc().capset(ctypes.byref(header), data), "capset")
