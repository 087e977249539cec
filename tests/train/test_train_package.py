"""The package surface: light imports, its names, and the package called as ``train``."""

from __future__ import annotations

import subprocess
import sys

import tracegrad.train
from tracegrad.train import ExactMatch, History


def test_importing_the_package_imports_no_heavy_dependency():
    code = (
        "import sys, tracegrad.train; print(sorted(m for m in ('ray', 'jax', 'litellm', 'optax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_exported_name_exists():
    for name in tracegrad.train.__all__:
        assert getattr(tracegrad.train, name) is not None, name


def test_the_package_is_callable_as_train():
    from train_helpers import ScriptedOptimizer, Suffixer, always, suffix_data

    model = Suffixer()
    opt = ScriptedOptimizer(model, always({"suffix": "!"}))
    history = tracegrad.train(model, suffix_data(n=2), ExactMatch(), opt, quiet=True)
    assert isinstance(history, History) and model.suffix.value == "!"
