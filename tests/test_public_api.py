"""The public API: every name in __all__ resolves; importing stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tracegrad

HEAVY = ("litellm", "jax", "ray")


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
    assert "node" in namespace and "bundle" in namespace
