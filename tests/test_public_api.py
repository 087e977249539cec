"""The public API: every name in __all__ resolves; importing stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tracegrad

HEAVY = ("litellm", "jax", "optax", "ray", "mlflow")


def loaded_after(code: str) -> list[str]:
    """The heavy modules (and tracegrad's optimizers) imported by ``code`` in a fresh process."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] if not m.startswith('tracegrad') else m for m in sys.modules "
        f"if m.split('.')[0] in {list(HEAVY)!r} or m.startswith('tracegrad.optimizers')}})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", tracegrad.__all__)
def test_every_public_name_resolves(name):
    assert getattr(tracegrad, name) is not None


def test_all_has_no_duplicates_and_covers_the_core():
    assert len(set(tracegrad.__all__)) == len(tracegrad.__all__)
    core = {
        "node", "bundle", "model", "Module", "apply", "no_trace", "tracing", "recording", "subgraph",
        "to_networkx", "Node", "ParameterNode", "OperationNode", "ErrorNode", "ExecutionError",
        "InvalidValueError", "Text", "Code", "Number", "Integer", "Choice", "Structure",
    }  # fmt: skip
    assert core <= set(tracegrad.__all__)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError):
        tracegrad.no_such_name  # noqa: B018


def test_error_hierarchy():
    assert issubclass(tracegrad.InvalidValueError, ValueError)
    assert issubclass(tracegrad.InvalidValueError, tracegrad.TracegradError)
    assert issubclass(tracegrad.ExecutionError, tracegrad.TracegradError)


def test_import_does_not_pull_heavy_dependencies():
    code = (
        "import json, sys; import tracegrad; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if any(k == m or k.startswith(m + '.') for k in sys.modules)]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_star_import_works():
    namespace: dict = {}
    exec("from tracegrad import *", namespace)
    assert "node" in namespace and "bundle" in namespace and "OptoPrime" in namespace


def test_star_import_loads_no_heavy_dependency():
    assert [m for m in loaded_after("from tracegrad import *") if not m.startswith("tracegrad")] == []


def test_the_model_client_imports_no_optimizer():
    assert loaded_after("import tracegrad.llm") == []


def test_all_lists_no_modules_and_dir_lists_the_lazy_names():
    import types

    assert not [n for n in tracegrad.__all__ if isinstance(getattr(tracegrad, n), types.ModuleType)]
    names = dir(tracegrad)
    for name in (
        "JaxOptimizer",
        "jax",
        "OptoPrime",
        "LLM",
        "Hybrid",
        "render",
        "to_dot",
        "visualize",
        "save_trace",
        "load_trace",
        "SavedTrace",
        "node",
        "train",
        "RayExecutor",
    ):
        assert name in names
    assert "JaxOptimizer" not in tracegrad.__all__  # it imports JAX


def test_internals_are_not_public():
    for name in ("build_problem", "extract_json", "resolve_model", "apply_updates", "render_problem"):
        assert name not in tracegrad.__all__ and not hasattr(tracegrad, name)


def test_errors_survive_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(tracegrad.InvalidValueError("too large", name="scale")))
    assert (err.reason, err.parameter_name, str(err)) == ("too large", "scale", "scale: too large")
    x = tracegrad.node("a", trainable=True, name="x")
    try:
        x + 1
    except tracegrad.ExecutionError as exc:
        copy = pickle.loads(pickle.dumps(exc))
    assert isinstance(copy.exception, TypeError) and copy.node.parents[0].name == "x"


def test_train_is_the_callable_training_package():
    import tracegrad.train as package

    assert tracegrad.train is package and callable(package)
    assert tracegrad.evaluate is package.evaluate


def test_visualize_is_the_callable_drawing_package():
    import graphviz

    import tracegrad.visualize as package

    assert tracegrad.visualize is package and callable(package)
    assert isinstance(tracegrad.visualize(tracegrad.node(1) + 1), graphviz.Digraph)
