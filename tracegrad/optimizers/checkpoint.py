"""Checkpoints of parameters and optimizer state together, in one atomic JSON file.

The file is a module checkpoint (``tracegrad.read_checkpoint`` reads it) whose
``extra`` holds ``{"optimizer": optimizer.state_dict()}``, so a run can resume with
the values and the optimizer's memory, moments or step count it had. Parameters are
keyed by their names: module paths with a module, the optimizer's names without one
(unique and stable, so another process that builds the same list loads the file).
"""

from __future__ import annotations

import os
from typing import Any

from tracegrad._io import atomic_write_json
from tracegrad.errors import InvalidValueError, TracegradError
from tracegrad.nodes.module import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Module, read_checkpoint
from tracegrad.optimizers.base import Optimizer
from tracegrad.trace import assign


def save_checkpoint(path: str | os.PathLike[str], optimizer: Optimizer, module: Module | None = None) -> None:
    """One atomic JSON file with the parameters and ``optimizer.state_dict()``.

    With a ``module`` this is ``module.save(path, extra={"optimizer": state})``; without
    one, the optimizer's own parameters are saved by name in the same format (so
    ``tracegrad.read_checkpoint`` reads both).
    """
    extra = {"optimizer": optimizer.state_dict()}
    if module is not None:
        module.save(path, extra=extra)
        return
    atomic_write_json(
        path,
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "module": None,
            "parameters": {name: p.kind.to_json(p.value) for name, p in optimizer.names.items()},
            "extra": extra,
        },
    )


def load_checkpoint(path: str | os.PathLike[str], optimizer: Optimizer, module: Module | None = None) -> None:
    """Restore a ``save_checkpoint`` file: the optimizer state and the parameters, or nothing."""
    payload = read_checkpoint(path)
    extra = payload.get("extra")
    state = extra.get("optimizer") if isinstance(extra, dict) else None
    if state is None:
        raise TracegradError(f"{os.fspath(path)!r} holds no optimizer state (saved without extra={{'optimizer': ...}})")
    saved = payload.get("parameters")
    if not isinstance(saved, dict):
        raise TracegradError(f"{os.fspath(path)!r} holds no parameters")
    if module is not None:
        previous = {p: p.value for _, p in module.named_parameters()}
        module.load_state_dict(saved)  # all or nothing
    else:
        previous = {p: p.value for p in optimizer.parameters}
        assign(_staged(saved, optimizer.names))
    try:
        optimizer.load_state_dict(state)  # checked completely before it changes anything
    except BaseException:
        assign(previous)  # the values were valid: putting them back cannot fail
        raise


def _staged(saved: dict[str, Any], names: dict[str, Any]) -> dict[Any, Any]:
    if sorted(saved) != sorted(names):
        raise TracegradError(f"the checkpoint holds parameters {sorted(saved)}, not {sorted(names)}")
    staged = {}
    for name, data in saved.items():
        try:
            staged[names[name]] = names[name].kind.from_json(data)
        except InvalidValueError as exc:
            raise InvalidValueError(" ".join(exc.reason.split()), name=name) from None  # one line
    return staged


__all__ = ["load_checkpoint", "save_checkpoint"]
