"""The optimization problems of benchmarks/opto_tasks.py start unsolved and their answers solve them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_problem_is_unsolved_at_first_and_solved_by_its_answer():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "opto_tasks.py"), "--check", "--side", "ours"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(figures["problems"]) == 12 and figures["ours_broken"] == []
