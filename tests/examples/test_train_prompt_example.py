"""The train_prompt example improves its validation accuracy offline, and resumes its run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_prompt.py"


def run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])}
    env.pop("TRACEGRAD_MODEL", None)
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_example_trains_prompt_and_parser_and_the_score_improves(tmp_path):
    out = run(cwd=tmp_path)
    assert "offline stand-ins" in out
    before, after = map(int, re.search(r"validation accuracy: (\d+)% -> (\d+)%", out).groups())
    assert after > before
    assert re.findall(r"^epoch (\d+): validation accuracy \d+%$", out, re.M) == ["1", "2"]
    assert "changed parse_answer.code" in out and "changed instruction" in out
    assert "re.findall" in out  # the trained parser is printed


def test_the_example_resumes_its_run(tmp_path):
    first = run("--epochs", "1", "--run-dir", "run", cwd=tmp_path)
    assert re.findall(r"^epoch (\d+)", first, re.M) == ["1"]
    second = run("--epochs", "2", "--run-dir", "run", cwd=tmp_path)
    assert re.findall(r"^epoch (\d+)", second, re.M) == ["2"]  # epoch 1 was not run again
    events = [json.loads(line)["event"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert events.count("start") == 1 and events.count("resume") == 1
