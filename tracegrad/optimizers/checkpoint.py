"""Checkpoints of parameters and optimizer state together, in one atomic JSON file.

The file is a module checkpoint (``tracegrad.read_checkpoint`` reads it) whose
``extra`` holds ``{"optimizer": optimizer.state_dict()}``, so a run can resume with
the values and the optimizer's memory, moments or step count it had.
"""

from __future__ import annotations

import os

from tracegrad._io import atomic_write_json
from tracegrad.errors import TracegradError
from tracegrad.nodes.module import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, Module, read_checkpoint
from tracegrad.optimizers.base import Optimizer, apply_updates


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
            "parameters": {p.name: p.kind.to_json(p._data) for p in optimizer.parameters},
            "extra": extra,
        },
    )


def load_checkpoint(path: str | os.PathLike[str], optimizer: Optimizer, module: Module | None = None) -> None:
    """Restore a ``save_checkpoint`` file: the optimizer state and the parameters, or nothing."""
    payload = read_checkpoint(path)
    state = (payload.get("extra") or {}).get("optimizer")
    if state is None:
        raise TracegradError(f"{os.fspath(path)!r} holds no optimizer state (saved without extra={{'optimizer': ...}})")
    previous = optimizer._snapshot()
    optimizer.load_state_dict(state)  # checked completely before it changes anything
    try:
        if module is not None:
            module.load_state_dict(payload["parameters"])
        else:
            saved = payload["parameters"]
            by_name = {p.name: p for p in optimizer.parameters}
            if sorted(saved) != sorted(by_name):
                raise TracegradError(f"the checkpoint holds parameters {sorted(saved)}, not {sorted(by_name)}")
            apply_updates({by_name[k]: by_name[k].kind.from_json(v) for k, v in saved.items()})
    except BaseException:
        optimizer._restore(previous)
        raise

__all__ = ["load_checkpoint", "save_checkpoint"]
