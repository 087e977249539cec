"""Errors of the JAX replay (plain Python: no JAX import)."""

from __future__ import annotations

from tracegrad.errors import TracegradError

_HINT = (
    "Operations between the parameters and the loss are replayed on JAX tracers, so bundled "
    "functions there must use jax.numpy (not numpy, math, float(), .item() or Python `if` on "
    "array values; use jnp.where / jax.lax.cond) and return arrays."
)


class NotDifferentiableError(TracegradError):
    """An operation on the path from a parameter to the loss cannot be replayed by JAX.

    ``node_name`` and ``operator`` name the recorded operation that failed.
    """

    def __init__(self, message: str, *, node_name: str | None = None, operator: str | None = None) -> None:
        self.node_name = node_name
        self.operator = operator
        super().__init__(message)

    @classmethod
    def at(cls, node_name: str, operator: str, problem: str, hint: str = _HINT) -> NotDifferentiableError:
        return cls(
            f"cannot differentiate through {node_name} (operator {operator!r}): {problem}. {hint}",
            node_name=node_name,
            operator=operator,
        )


__all__ = ["NotDifferentiableError"]
