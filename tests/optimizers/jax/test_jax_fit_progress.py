"""JaxOptimizer.fit shows its progress (the loss in the postfix) unless quiet, and emits
its proposal and decision as one step of run events."""

from __future__ import annotations

import io

import jax.numpy as jnp
import optax
import pytest

import tracegrad as tg
from tracegrad.optimizers.jax import JaxOptimizer
from tracegrad.optimizers.jax.progress import FitProgress

TARGET = jnp.array([1.0, -2.0, 0.5])


@tg.bundle
def distance(x, target):
    """Squared distance to the target."""
    return jnp.sum((x - target) ** 2)


def fitted():
    x = tg.node(jnp.array([0.3, -0.7, 2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.adam(0.05))
    opt.backward(distance(x, tg.node(TARGET)))
    return x, opt


@pytest.mark.parametrize("scan", [False, True])
def test_fit_shows_a_bar_with_the_final_loss(capfd, scan):
    _, opt = fitted()
    report = opt.fit(30, scan=scan)
    err = capfd.readouterr().err
    assert "fit" in err and "30/30" in err
    assert f"loss={report.details['loss']:.6g}" in err


def test_a_quiet_fit_prints_nothing(capfd):
    x, opt = fitted()
    opt.fit(30, quiet=True)
    assert capfd.readouterr() == ("", "") and opt.step_count == 30
    assert float(jnp.sum((x.data - TARGET) ** 2)) < 5.0


def test_the_bar_reads_a_loss_now_and_then_and_closes_full():
    out = io.StringIO()
    bar = FitProgress(4, quiet=False, interval=0.0, file=out)  # read every loss
    for loss in (4.0, 3.0, 2.0):
        bar.step(jnp.float32(loss))
    assert bar.bar.n == 3 and bar.bar.postfix == "loss=2"
    bar.close(1.5)
    text = out.getvalue()
    assert "4/4" in text and "loss=1.5" in text and bar.bar is None


def test_a_fit_that_fails_closes_its_bar(capfd):
    @tg.bundle
    def sqrt_sum(x):
        return jnp.sum(jnp.sqrt(x))

    x = tg.node(jnp.array([1.0, 4.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(10.0))
    opt.backward(sqrt_sum(x))
    with pytest.raises(tg.InvalidValueError, match="not finite"):
        opt.fit(5)
    assert "5/5" in capfd.readouterr().err


def test_fit_emits_one_proposal_and_its_decision():
    _, opt = fitted()
    seen = []
    opt.subscribe(seen.append)
    opt.fit(10, quiet=True)
    proposed, decided = seen
    assert (proposed.kind, proposed.optimizer, proposed.step) == ("proposed", "JaxOptimizer", 1)
    assert len(proposed.changes["x"]["new"]) == 3 and decided.accepted
