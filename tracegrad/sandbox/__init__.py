"""The sandbox: model-written code runs in a confined process of its own.

The code of a trainable function that an optimizer proposed (its code parameter's
value differs from the source the user wrote) runs here by default: in a process of
its own, with a wall-clock timeout, memory, CPU, process and file-size limits, a
working directory of its own, no network and every file system read-only where the
platform allows it, and no credentials in its environment. However it ends (a
timeout, ``os._exit``, ``sys.exit``, a crash), the call raises an exception that
becomes an error node, and the run goes on; nothing it does changes the caller.
The code the user wrote runs in-process, as always. See docs/sandbox.md for the
threat model.

``Sandbox`` holds the settings, ``sandboxing()`` changes them for a block,
``bundle(..., sandbox=False)`` trusts one function, ``sandbox_support()`` says what
this machine can do, and ``run_confined`` runs a module-level function confined.
The parts that fork and confine are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tracegrad.sandbox.errors import SandboxError
from tracegrad.sandbox.settings import Sandbox, current_sandbox, sandboxing, settings_for

if TYPE_CHECKING:
    from tracegrad.sandbox.call import Reply, run_confined
    from tracegrad.sandbox.child import inside_sandbox
    from tracegrad.sandbox.namespaces import SandboxSupport

_LAZY = {
    "Reply": "tracegrad.sandbox.call",
    "run_confined": "tracegrad.sandbox.call",
    "SandboxSupport": "tracegrad.sandbox.namespaces",
    "inside_sandbox": "tracegrad.sandbox.child",
}


def sandbox_support() -> SandboxSupport:
    """What the sandbox can do on this machine (its worker is started to find out)."""
    return importlib.import_module("tracegrad.sandbox.worker").worker(False).support


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tracegrad.sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "Reply",
    "Sandbox",
    "SandboxError",
    "SandboxSupport",
    "current_sandbox",
    "inside_sandbox",
    "run_confined",
    "sandbox_support",
    "sandboxing",
    "settings_for",
]
