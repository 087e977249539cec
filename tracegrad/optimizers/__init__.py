"""Optimizers: the propose/apply protocol, the LLM optimizers, JAX gradients, Hybrid.

The documented import path of every name is ``tracegrad.<name>`` (``tg.OptoPrime``).
The LLM and JAX parts are imported on first use (JAX only by ``JaxOptimizer``).
"""

from __future__ import annotations

import importlib
from typing import Any

from tracegrad.optimizers.base import Optimizer, ParameterUpdate, Proposal, Rejection, StepReport
from tracegrad.optimizers.hybrid import Hybrid

_LAZY: dict[str, str] = {
    "LLMOptimizer": "tracegrad.optimizers.llm",
    "OptoPrime": "tracegrad.optimizers.llm",
    "OptoPrimeMulti": "tracegrad.optimizers.llm",
    "OPRO": "tracegrad.optimizers.llm",
    "JaxOptimizer": "tracegrad.optimizers.jax",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tracegrad.optimizers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Hybrid",
    "LLMOptimizer",
    "OPRO",
    "OptoPrime",
    "OptoPrimeMulti",
    "Optimizer",
    "ParameterUpdate",
    "Proposal",
    "Rejection",
    "StepReport",
]
