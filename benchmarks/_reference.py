"""Run a snippet under the reference library (``trace-opt``) in its own virtual environment.

The reference library is never a dependency: it lives in a separate environment,
found through ``TRACE_OPT_PYTHON`` (a python executable), else ``benchmarks/.refenv``
(``make refenv`` creates it). Benchmarks compare against it in the same run when it
is there and say so when it is not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_DEFAULT = Path(__file__).resolve().parent / ".refenv" / "bin" / "python"


def reference_python() -> str | None:
    """The interpreter that has ``trace-opt`` installed, or None."""
    candidate = os.environ.get("TRACE_OPT_PYTHON") or (str(_DEFAULT) if _DEFAULT.exists() else None)
    return candidate


def run_reference(code: str, timeout: float = 600) -> dict | None:
    """Run ``code`` with the reference interpreter; it must print one JSON object last.

    Returns that object, or None when the reference library is not installed.
    """
    python = reference_python()
    if python is None:
        return None
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        print(f"reference run failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])
