"""The LLM optimizer examples run offline with their stand-in models and succeed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "last_line"),
    [
        ("tune_number", "final distance: 29.98 m (target 30.0 m)"),
        ("fix_code", "all tests pass"),
        ("improve_prompt", "validation accuracy: 0% -> 100%"),
    ],
)
def test_example_runs_offline(name, last_line, capsys):
    load(name).main([])
    out = capsys.readouterr().out
    assert "offline stand-in" in out
    assert out.rstrip().splitlines()[-1] == last_line
