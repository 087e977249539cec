"""Numerical optimization through a trace: the paper's experiment, in spirit.

A traced function of a vector parameter ``x`` (a least-squares fit plus a penalty,
written with jax.numpy in bundled functions) is minimised twice from the same start:

* by ``JaxOptimizer(adam)``: the trace is replayed as a jitted JAX function and
  differentiated -- "Trace is the new AutoDiff", literally;
* by ``OptoPrime``, when a model is configured (``TRACEGRAD_MODEL``): an LLM reads the
  same trace as a small program with its values and the loss as feedback, and proposes
  new values for ``x``.

Both loss curves are printed side by side. Without a model only the gradient curve is
computed, and a note says how to add the other one.

Run: ``python examples/numerical_optimization.py``
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import optax

import tracegrad as tg

DIM = 5
STEPS = 30
LLM_STEPS = 10
A = jax.random.normal(jax.random.PRNGKey(0), (8, DIM))
B = A @ jnp.array([1.0, -2.0, 0.5, 3.0, -1.0]) + 0.1


@tg.bundle
def residual(x, a, b):
    """How far the linear model a @ x is from the observations b."""
    return a @ x - b


@tg.bundle
def mean_square(r):
    """Mean of the squared residuals."""
    return jnp.mean(r**2)


@tg.bundle
def penalty(x):
    """A small smooth penalty that keeps x from growing large."""
    return 0.01 * jnp.sum(x**2)


def objective(x: tg.Node) -> tg.Node:
    """The traced function to minimise (four recorded operations)."""
    return mean_square(residual(x, tg.node(A, name="a"), tg.node(B, name="b"))) + penalty(x)


def start() -> jax.Array:
    return jnp.zeros(DIM, dtype=jnp.float32)


def run_adam() -> list[float]:
    x = tg.node(start(), trainable=True, name="x", description="the vector to optimize")
    opt = tg.JaxOptimizer([x], optax.adam(0.1))
    losses = []
    for _ in range(STEPS):
        loss = objective(x)
        opt.zero_feedback()
        opt.backward(loss)
        losses.append(opt.step().details["loss"])
    print(f"adam: {opt.compile_count} compilation for {STEPS} steps; x = {[round(float(v), 2) for v in x.data]}")
    return losses


def run_optoprime() -> list[float] | None:
    if not os.environ.get("TRACEGRAD_MODEL"):
        print("note: OptoPrime skipped -- set TRACEGRAD_MODEL (e.g. openai/gpt-4o-mini) to compare with an LLM")
        return None

    x = tg.node(start(), trainable=True, name="x", description=f"a vector of {DIM} floats to optimize")
    opt = tg.OptoPrime([x], llm=tg.LLM())
    losses = []
    for _ in range(LLM_STEPS):
        loss = objective(x)
        value = float(loss.data)
        losses.append(value)
        opt.zero_feedback()
        opt.backward(loss, f"The loss is {value:.4f}. Minimise it: propose a better x (a list of {DIM} floats).")
        report = opt.step()
        if report.rejections:
            print(f"  optoprime: {len(report.rejections)} suggestion(s) rejected: {report.rejections[0].reason}")
    print(f"optoprime: x = {[round(float(v), 2) for v in x.data]}")
    return losses


def main() -> None:
    print(f"backend: {jax.default_backend()}")
    adam = run_adam()
    llm = run_optoprime()
    print(f"\n{'step':>4}  {'JaxOptimizer(adam)':>18}  {'OptoPrime':>10}")
    for i in range(STEPS):
        other = f"{llm[i]:10.4f}" if llm is not None and i < len(llm) else f"{'-':>10}"
        print(f"{i:4d}  {adam[i]:18.4f}  {other}")
    assert adam[-1] < adam[0] / 10, "adam should reduce the loss by at least 10x"


if __name__ == "__main__":
    main()
