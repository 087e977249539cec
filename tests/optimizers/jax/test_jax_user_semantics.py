"""JaxOptimizer as a user of the reference library meets it: a step consumes its
losses, a loss that depends on no parameter says so, misspelled options are refused,
and a copy has its own optax state over the same parameters."""

from __future__ import annotations

import copy

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tracegrad as tg
from tracegrad.optimizers.jax import JaxOptimizer


@tg.bundle
def distance(x, target):
    """Squared distance to the target."""
    return jnp.sum((x - target) ** 2)


def test_a_committed_step_consumes_the_losses_it_used():
    x = tg.node(jnp.array([1.0, 2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.25))
    opt.backward(distance(x, tg.node(jnp.zeros(2))))
    assert opt.step().details["loss"] == pytest.approx(5.0)
    opt.backward(distance(x, tg.node(jnp.zeros(2))))  # no zero_feedback() in between
    assert opt.step().details["loss"] == pytest.approx(5.0 / 4)  # the new loss alone, not the sum
    with pytest.warns(UserWarning, match="did nothing"):
        assert opt.step().status == "no_feedback"


def test_fit_after_a_step_runs_on_the_losses_of_that_step():
    x = tg.node(jnp.array([1.0, 2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.25))
    opt.backward(distance(x, tg.node(jnp.zeros(2))))
    opt.step()
    report = opt.fit(3)
    assert report.details["losses"][0] == pytest.approx(5.0 / 4) and opt.step_count == 4
    opt.zero_feedback()
    with pytest.raises(tg.TracegradError, match="needs a loss"):
        opt.fit(1)


def test_a_loss_that_depends_on_no_parameter_says_so():
    x = tg.node(jnp.array([1.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.sgd(0.1))
    loss = distance(tg.node(jnp.array([2.0]), name="y"), tg.node(jnp.zeros(1)))
    opt.backward(loss)
    with pytest.warns(UserWarning, match="reached none of the parameters"):
        report = opt.step()
    assert report.status == "no_feedback" and loss.name in report.reason
    np.testing.assert_allclose(x.data, [1.0])


def test_an_unknown_keyword_of_the_jax_optimizer_is_refused_with_the_closest_name():
    x = tg.node(jnp.zeros(2), trainable=True, name="x")
    with pytest.raises(TypeError, match=r"'cache_sise' \(did you mean 'cache_size'\?\)"):
        JaxOptimizer([x], optax.sgd(0.1), cache_sise=4)


def test_a_copied_jax_optimizer_has_its_own_optax_state_over_the_same_parameters():
    x = tg.node(jnp.array([1.0, 2.0]), trainable=True, name="x")
    opt = JaxOptimizer([x], optax.adam(0.1))
    opt.backward(distance(x, tg.node(jnp.zeros(2))))
    twin = copy.deepcopy(opt)
    assert twin.parameters[0] is x
    twin.step()
    assert twin.step_count == 1 and opt.step_count == 0
    assert int(twin.opt_state[0].count) == 1 and int(opt.opt_state[0].count) == 0
    assert opt.propose().status == "updated"  # the registered losses are each optimizer's own
