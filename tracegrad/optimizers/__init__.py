"""Optimizers: the base loop, the LLM optimizers, the JAX gradient optimizer, hybrids.

The LLM and JAX parts import their heavy dependencies only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from tracegrad.optimizers.base import Optimizer, ParameterUpdate, StepReport, apply_updates
from tracegrad.optimizers.checkpoint import load_checkpoint, save_checkpoint

_LAZY: dict[str, str] = {
    "LLMOptimizer": "tracegrad.optimizers.llm.optimizer",
    "LLMStepReport": "tracegrad.optimizers.llm.optimizer",
    "OptoPrime": "tracegrad.optimizers.llm.optoprime",
    "OPRO": "tracegrad.optimizers.llm.opro",
    "JaxOptimizer": "tracegrad.optimizers.jax",
    "Hybrid": "tracegrad.optimizers.hybrid",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tracegrad.optimizers' has no attribute {name!r}")


__all__ = ["Optimizer", "ParameterUpdate", "StepReport", "apply_updates", "load_checkpoint", "save_checkpoint", *_LAZY]
