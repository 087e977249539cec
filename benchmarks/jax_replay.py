"""Cost of JAX gradient steps through the trace replay, against hand-written JAX.

The workload: a graph of 100 recorded operations (bundled jax.numpy layers and traced
arithmetic) on one 1,000-element array parameter, minimised with optax.adam.

Prints one JSON object as its last line (times in milliseconds, medians of several
rounds, measured in this one run after warm-up):
  compiled_step_ms     one step through the library's compiled replay (JaxOptimizer.fit)
  handwritten_step_ms  one step of the same loss written directly as a jitted
                       value_and_grad + optax update, called in the same kind of loop
  ratio                compiled / handwritten, the median of the ratios of rounds run
                       back to back (target <= 1.10)
  compiled_scan_step_ms, handwritten_scan_step_ms
                       the same with the whole loop as one jax.lax.scan (fit(n, scan=True))
  eager_step_ms        the plain loop: traced forward, zero_feedback, backward, step
  eager_forward_ms     the same forward in plain jax.numpy, no tracing
  eager_ratio          eager_step_ms / eager_forward_ms (target <= 3)
  first_step_ms        the first step of a fresh optimizer (analysis + compilation)
  backend, device      where it ran (jax.default_backend(), the first device)
Run: ``python benchmarks/jax_replay.py`` (``--quick`` for fewer repetitions).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

import tracegrad as tg
from tracegrad.optimizers.jax import JaxOptimizer

SIZE = 1_000
BLOCKS = 33  # 3 operations each, plus the loss: 100 operations
LR = 1e-3


@tg.bundle
def layer(h, x):
    """A smooth layer: tanh(h * x + 0.1)."""
    return jnp.tanh(h * x + 0.1)


@tg.bundle
def mean_square(h):
    """The loss: mean of squares."""
    return jnp.mean(h**2)


def traced_forward(x: tg.Node) -> tg.Node:
    h = x
    for _ in range(BLOCKS):
        h = layer(h, x)
        h = h * 0.5
        h = h + x
    return mean_square(h)


def plain_forward(x: jax.Array) -> jax.Array:
    h = x
    for _ in range(BLOCKS):
        h = jnp.tanh(h * x + 0.1)
        h = h * 0.5
        h = h + x
    return jnp.mean(h**2)


def initial() -> jax.Array:
    return jnp.linspace(-1.0, 1.0, SIZE, dtype=jnp.float32)


def median_ms(fn, rounds: int) -> float:
    """Median over rounds of fn(), which returns milliseconds per step."""
    return statistics.median(fn() for _ in range(rounds))


def main() -> None:
    quick = "--quick" in sys.argv
    rounds, steps, eager_steps = (3, 50, 10) if quick else (9, 300, 40)
    jnp.ones(1).block_until_ready()  # start the backend
    plain_forward(initial()).block_until_ready()  # warm the eager op caches

    # first step of a fresh optimizer: analysis, tracing and compilation included
    x = tg.node(initial(), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.adam(LR))
    loss = traced_forward(x)
    opt.backward(loss)
    start = time.perf_counter()
    opt.step()
    first_step_ms = (time.perf_counter() - start) * 1e3
    n_ops = len(next(iter(opt.cache._entries.values())).program.ops)

    # compiled steps through the library
    opt.fit(steps)  # warm-up
    opt.fit(steps, scan=True)

    def compiled(scan: bool) -> float:
        start = time.perf_counter()
        opt.fit(steps, scan=scan)
        return (time.perf_counter() - start) * 1e3 / steps

    # the same loss and update written by hand
    tx = optax.adam(LR)

    def step(p, state):
        value, grads = jax.value_and_grad(plain_forward)(p)
        updates, state = tx.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value

    hand_step = jax.jit(step)

    def run_scan(p, state):
        def body(carry, _):
            p, s, value = step(*carry)
            return (p, s), value

        (p, state), values = jax.lax.scan(body, (p, state), None, length=steps)
        return p, state, values

    hand_scan = jax.jit(run_scan)
    p0 = initial()
    s0 = tx.init(p0)
    jax.block_until_ready(hand_step(p0, s0))
    jax.block_until_ready(hand_scan(p0, s0))

    def handwritten() -> float:
        p, s = p0, s0
        values = []
        start = time.perf_counter()
        for _ in range(steps):
            p, s, value = hand_step(p, s)
            values.append(value)
        jax.device_get(values)
        return (time.perf_counter() - start) * 1e3 / steps

    def handwritten_scan() -> float:
        start = time.perf_counter()
        jax.device_get(hand_scan(p0, s0)[2])
        return (time.perf_counter() - start) * 1e3 / steps

    # interleave the measurements so drifts in machine load hit both sides alike
    c_ms, h_ms, cs_ms, hs_ms = [], [], [], []
    for _ in range(rounds):
        c_ms.append(compiled(False))
        h_ms.append(handwritten())
        cs_ms.append(compiled(True))
        hs_ms.append(handwritten_scan())
    compiled_step_ms = statistics.median(c_ms)
    handwritten_step_ms = statistics.median(h_ms)

    # the plain eager loop: traced forward, backward, step
    def eager() -> float:
        start = time.perf_counter()
        for _ in range(eager_steps):
            loss = traced_forward(x)
            opt.zero_feedback()
            opt.backward(loss)
            opt.step()
        return (time.perf_counter() - start) * 1e3 / eager_steps

    def forward() -> float:
        value = x.data
        start = time.perf_counter()
        for _ in range(eager_steps):
            plain_forward(value).block_until_ready()
        return (time.perf_counter() - start) * 1e3 / eager_steps

    eager()  # warm-up
    e_ms, f_ms = [], []
    for _ in range(rounds):
        e_ms.append(eager())
        f_ms.append(forward())
    eager_step_ms = statistics.median(e_ms)
    eager_forward_ms = statistics.median(f_ms)

    figures = {
        "operations": n_ops,
        "parameter_size": SIZE,
        "compiled_step_ms": round(compiled_step_ms, 4),
        "handwritten_step_ms": round(handwritten_step_ms, 4),
        "ratio": round(statistics.median(c / h for c, h in zip(c_ms, h_ms, strict=True)), 3),
        "compiled_scan_step_ms": round(statistics.median(cs_ms), 4),
        "handwritten_scan_step_ms": round(statistics.median(hs_ms), 4),
        "eager_step_ms": round(eager_step_ms, 3),
        "eager_forward_ms": round(eager_forward_ms, 3),
        "eager_ratio": round(eager_step_ms / eager_forward_ms, 2),
        "first_step_ms": round(first_step_ms, 1),
        "compilations": opt.compile_count,
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "device_kind": jax.devices()[0].device_kind,
        "jax": jax.__version__,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
