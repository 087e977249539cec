"""A controller whose structure is code (for an LLM) and whose gains are an array (for gradients).

The system: a cart on a rail with friction, simulated in jax.numpy for 3 seconds; the
controller must bring it from position 0 to position 1 and hold it there. The
controller's *code* is a trainable bundle (its source is a parameter an LLM may
rewrite); its *gains* are an array parameter tuned by gradient descent through the
whole simulated trajectory (about 80 recorded operations replayed as one jitted JAX
function).

First JaxOptimizer tunes the gains alone; then ``Hybrid(llm=OptoPrime(code),
jax=JaxOptimizer(gains))`` runs a few rounds: one ``backward`` gives the numeric cost to
JAX and a text summary of the trajectory to the LLM, and one ``step()`` updates both.
A rewrite can make the controller worse: the rounds end with the best code and gains
seen. The LLM is the one ``TRACEGRAD_MODEL`` names; without one, a scripted stand-in that
knows a single fix (cancel the rail's friction) plays its part, and says so.

Run: ``python examples/hybrid_controller.py``
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import optax

import tracegrad as tg

DT = 0.15
HORIZON = 20  # 3 simulated seconds
TARGET = 1.0


@tg.bundle(trainable=True)
def controller(state, gains):
    """The force on the cart: a proportional-derivative law towards position 1.0.

    state = [position, velocity]; gains = [kp, kd] (tuned by gradients).
    """
    error = 1.0 - state[0]
    return gains[0] * error - gains[1] * state[1]


@tg.bundle
def dynamics(state, force):
    """One step (DT seconds) of the cart: unit mass, friction 0.2, the force saturates at +-3."""
    position, velocity = state[0], state[1]
    acceleration = 3.0 * jnp.tanh(force / 3.0) - 0.2 * velocity
    return jnp.stack([position + DT * velocity, velocity + DT * acceleration])


@tg.bundle
def stage_cost(state, force):
    """Squared distance to the target plus a small price on the force."""
    return (state[0] - 1.0) ** 2 + 0.01 * force**2


def simulate(gains: tg.Node) -> tuple[tg.Node, list[float]]:
    """Run the closed loop; returns the total cost (a node) and the positions."""
    state = tg.node(jnp.zeros(2), name="start")
    cost, positions = None, []
    for _ in range(HORIZON):
        force = controller(state, gains)
        state = dynamics(state, force)
        step_cost = stage_cost(state, force)
        cost = step_cost if cost is None else cost + step_cost
        positions.append(float(state.data[0]))
    return cost * DT, positions


def summary(cost: tg.Node, positions: list[float]) -> str:
    overshoot = max(0.0, max(positions) - TARGET)
    return (
        f"cost {float(cost.data):.3f} (lower is better). Final position {positions[-1]:.3f} (target {TARGET}), "
        f"overshoot {overshoot:.3f}, position after 1.5 s {positions[HORIZON // 2 - 1]:.3f}."
    )


def tune_gains(gains: tg.Node, steps: int) -> None:
    opt = tg.JaxOptimizer([gains], optax.adam(0.1))
    for i in range(steps):
        cost, positions = simulate(gains)
        opt.zero_feedback()
        opt.backward(cost)
        report = opt.step()
        if i % 10 == 0 or i == steps - 1:
            print(f"  step {i:3d}: {summary(cost, positions)} |grad| {report.details['grad_norm']:.3f}")
    print(f"  gains = {[round(float(g), 3) for g in gains.data]}; {opt.compile_count} compilation(s) for {steps} steps")


FRICTION_FIX = '''def controller(state, gains):
    """The force on the cart: proportional-derivative towards 1.0, plus the friction cancelled."""
    error = 1.0 - state[0]
    return gains[0] * error - gains[1] * state[1] + 0.2 * state[1]
'''


def stand_in_model(request: tg.LLMRequest) -> str:
    """An offline stand-in for a model: proposes cancelling the friction, once."""
    prompt = request.messages[-1]["content"]
    if "0.2 * state[1]" in prompt:
        return json.dumps({"reasoning": "The friction is already cancelled.", "suggestion": {}})
    reasoning = "The dynamics subtract 0.2 * velocity as friction; the controller can cancel it."
    return json.dumps({"reasoning": reasoning, "suggestion": {controller.parameter.name: FRICTION_FIX}})


def hybrid_rounds(gains: tg.Node, rounds: int, gradient_steps: int = 10) -> None:
    if tg.configured_model():  # $TRACEGRAD_MODEL or the embedded model
        llm = tg.LLM()
    else:
        print("  (no model configured: using the offline stand-in; set TRACEGRAD_MODEL for a real one)")
        llm = tg.LLM("stand-in", transport=tg.ScriptedTransport(stand_in_model), cache=False)
    opt = tg.Hybrid(llm=tg.OptoPrime([controller.parameter], llm=llm), jax=tg.JaxOptimizer([gains], optax.adam(0.1)))
    code = controller.parameter
    best: tuple[float, str, jax.Array] | None = None  # (cost, code, gains) of the best round so far
    for r in range(rounds + 1):
        cost, positions = simulate(gains)
        if best is None or float(cost.data) < best[0]:
            best = (float(cost.data), code.data, gains.data)
        if r == rounds:
            break
        feedback = summary(cost, positions)
        print(f"  round {r}: {feedback}")
        opt.zero_feedback()
        opt.backward(cost, feedback)  # the numeric cost for JAX, the text for the LLM
        report = opt.step()
        print(f"    llm: {report.parts['llm'].status}; jax loss {report.parts['jax'].details['loss']:.3f}")
        jax_opt = opt.optimizers["jax"]
        for _ in range(gradient_steps):  # a few gradient steps on the new code's gains
            cost, _ = simulate(gains)
            jax_opt.zero_feedback()
            jax_opt.backward(cost)
            jax_opt.step()
    print(f"  after the last round: {summary(cost, positions)}")
    if best is not None and best[0] < float(cost.data):  # a rewrite can make the controller worse
        print(f"  keeping the best round's code and gains (cost {best[0]:.3f})")
        code.update(best[1])
        gains.update(best[2])
    print("  final controller code:\n" + code.data)


def main() -> None:
    print(f"backend: {jax.default_backend()}")
    gains = tg.node(jnp.array([0.5, 0.1]), trainable=True, name="gains", description="controller gains [kp, kd]")
    cost, positions = simulate(gains)
    start = float(cost.data)
    print(f"initial: {summary(cost, positions)}")
    print("gradient descent on the gains (JaxOptimizer, adam):")
    tune_gains(gains, 40)
    cost, positions = simulate(gains)
    assert float(cost.data) < start, "the gradient steps should lower the cost"
    print("hybrid: OptoPrime rewrites the controller's code, JAX tunes its gains:")
    hybrid_rounds(gains, 3)


if __name__ == "__main__":
    main()
