"""Smoke tests: the JAX examples and the replay benchmark run, without a model and (for
the hybrid controller) with a scripted one."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def run(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TRACEGRAD_MODEL"}
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_numerical_optimization_example_runs_without_a_model():
    out = run("examples/numerical_optimization.py")
    assert "OptoPrime skipped" in out
    assert "1 compilation for 30 steps" in out


def test_hybrid_controller_example_runs_without_a_model():
    out = run("examples/hybrid_controller.py")
    assert "offline stand-in" in out
    assert "llm: updated" in out and "+ 0.2 * state[1]" in out  # the stand-in's code was applied
    assert "1 compilation(s)" in out


def test_hybrid_controller_rounds_with_a_scripted_model(monkeypatch):
    import jax.numpy as jnp

    import tracegrad as tg

    spec = importlib.util.spec_from_file_location("hybrid_controller_example", ROOT / "examples/hybrid_controller.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    new_code = (
        "def controller(state, gains):\n"
        '    """PD law with a saturating damping term."""\n'
        "    return gains[0] * (1.0 - state[0]) - gains[1] * jnp.tanh(state[1])\n"
    )
    reply = json.dumps(
        {"reasoning": "saturate the damping", "answer": None, "suggestion": {"controller_code": new_code}}
    )
    real = tg.LLM
    transport = tg.ScriptedTransport([reply, reply])
    monkeypatch.setenv("TRACEGRAD_MODEL", "test/model")
    monkeypatch.setattr(tg, "LLM", lambda *a, **k: real("test/model", transport=transport, cache=False))
    gains = tg.node(jnp.array([0.5, 0.1]), trainable=True, name="gains")
    example.hybrid_rounds(gains, 2, gradient_steps=2)
    assert "jnp.tanh(state[1])" in example.controller.parameter.data
    assert len(transport.requests) == 2
    assert "overshoot" in transport.requests[0].messages[-1]["content"]


def test_hybrid_controller_keeps_the_best_round_when_a_rewrite_is_worse(monkeypatch, capsys):
    import jax.numpy as jnp

    import tracegrad as tg

    spec = importlib.util.spec_from_file_location("hybrid_controller_worse", ROOT / "examples/hybrid_controller.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    original = example.controller.parameter.data
    idle = "def controller(state, gains):\n    return 0.0 * gains[0]\n"  # no force: the cart never moves
    reply = json.dumps({"reasoning": "switch it off", "answer": None, "suggestion": {"controller_code": idle}})
    real = tg.LLM
    monkeypatch.setenv("TRACEGRAD_MODEL", "test/model")
    transport = tg.ScriptedTransport([reply])
    monkeypatch.setattr(tg, "LLM", lambda *a, **k: real("test/model", transport=transport, cache=False))
    gains = tg.node(jnp.array([0.5, 0.1]), trainable=True, name="gains")
    example.hybrid_rounds(gains, 1, gradient_steps=2)
    assert "keeping the best round's code and gains" in capsys.readouterr().out
    assert example.controller.parameter.data == original
    assert [round(float(g), 6) for g in gains.data] == [0.5, 0.1]


def test_benchmark_prints_its_figures():
    figures = json.loads(run("benchmarks/jax_replay.py", "--quick").strip().splitlines()[-1])
    for key in (
        "compiled_step_ms",
        "handwritten_step_ms",
        "ratio",
        "eager_step_ms",
        "eager_forward_ms",
        "first_step_ms",
    ):
        assert figures[key] > 0
    assert figures["operations"] == 100
    assert figures["backend"]
