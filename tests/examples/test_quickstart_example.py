"""The quick-start demo runs from a fresh directory and leaves a loadable checkpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tracegrad as tg

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_runs_and_saves_a_checkpoint(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "shorten1 = self.shorten(ask1, max_words)" in result.stdout
    payload = tg.read_checkpoint(tmp_path / "out" / "quickstart.json")
    assert set(payload["parameters"]) == {"template", "max_words", "shorten.code"}
    if shutil.which("dot"):
        assert (tmp_path / "out" / "quickstart_trace.svg").read_text().lstrip().startswith("<?xml")
