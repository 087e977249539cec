"""JAX gradients on the trace: replay a recorded graph as a pure, jittable function.

* ``JaxOptimizer(params, optax_transform)`` -- ``zero_feedback`` / ``backward(loss)`` /
  ``step()`` with ``jax.value_and_grad`` and optax, compiled once per graph structure;
  ``fit(n)`` runs ``n`` compiled steps.
* ``compile(loss)`` -- the escape hatch: ``fn, params = compile(loss)`` with ``fn``
  jitted and pure, for ``jax.vmap``, sharding or a hand-written training loop.
* ``NotDifferentiableError`` -- an operation between the parameters and the loss could
  not be replayed by JAX (bundled functions there must use ``jax.numpy``).

Importing this package imports JAX and optax (``pip install 'tracegrad[jax]'``; with
``jax[cuda]`` everything runs on the GPU).
"""

from tracegrad.optimizers.jax.compile import CompiledLoss, compile
from tracegrad.optimizers.jax.errors import NotDifferentiableError
from tracegrad.optimizers.jax.optimizer import JaxOptimizer
from tracegrad.optimizers.jax.replay import ReplayCache, analyze, build_program

__all__ = [
    "CompiledLoss",
    "JaxOptimizer",
    "NotDifferentiableError",
    "ReplayCache",
    "analyze",
    "build_program",
    "compile",
]
