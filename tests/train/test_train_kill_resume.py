"""A run killed with SIGKILL at random moments resumes to the same end as an uninterrupted one.

``kill_resume_job.py`` trains a scripted pipeline with OptoPrime (every model answers
from the request's content alone). The test runs it once without interruption, then
again in another directory, killing it five times at random moments and resuming it
each time. While the job runs and after every kill, the checkpoint must be readable.
At the end, history, parameters, optimizer state and the log (less its ``resume``
lines) must be those of the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracegrad.train.run import FORMAT

JOB = Path(__file__).with_name("kill_resume_job.py")
ROOT = Path(__file__).resolve().parents[2]


def start(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(JOB), str(run_dir)], env=env, cwd=ROOT, stderr=subprocess.PIPE)


def check_checkpoint(run_dir: Path) -> int | None:
    """The step of the checkpoint, which must be readable whenever it exists."""
    path = run_dir / "checkpoint.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    data = json.loads(text)  # never half-written
    assert data["format"] == FORMAT
    return data["step"]


def watch(proc: subprocess.Popen, run_dir: Path, kill_at: tuple[int, float] | None = None) -> list[int]:
    """Read the checkpoint over and over while the job runs. With ``kill_at = (step,
    delay)``, SIGKILL the job ``delay`` seconds after its checkpoint reached ``step``."""
    steps, deadline = [], None
    while proc.poll() is None:
        step = check_checkpoint(run_dir)
        if step is not None:
            steps.append(step)
            if kill_at is not None and deadline is None and step >= kill_at[0]:
                deadline = time.monotonic() + kill_at[1]
        if deadline is not None and time.monotonic() >= deadline:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.002)
    if proc.returncode != -signal.SIGKILL:
        assert proc.returncode == 0, proc.stderr.read().decode()
    return steps


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def log_events(run_dir: Path) -> list[dict]:
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    events = [e for e in events if e["event"] != "resume"]
    for e in events:
        if "report" in e:
            e["report"].pop("overhead_ms", None)
            e["report"].pop("seconds", None)
    return events


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_the_same_end(tmp_path):
    whole = tmp_path / "whole"
    watch(start(whole), whole)
    expected = result(whole)
    total = len(expected["history"]["steps"])
    assert total > 10

    # five kills: each a random moment (up to 80 ms) after the run reached a random step
    # of the first half, where the optimizer still works; the last one is resumed to the end
    parts = tmp_path / "parts"
    rng = random.Random(os.environ.get("TRACEGRAD_KILL_SEED", "kills"))
    targets = sorted(rng.choices(range(total // 2), k=5))
    landed, seen = [], []
    for target in targets:
        proc = start(parts)
        seen += watch(proc, parts, (target, rng.uniform(0.0, 0.08)))
        if proc.returncode == -signal.SIGKILL:
            landed.append(check_checkpoint(parts))
    watch(start(parts), parts)
    assert len(landed) >= 4, f"most kills came after the job had finished: {landed}"
    assert seen == sorted(seen)  # a checkpoint never went back

    got = result(parts)
    assert got["history"] == expected["history"]
    assert got["parameters"] == expected["parameters"]
    assert got["optimizer"] == expected["optimizer"]
    assert log_events(parts) == log_events(whole)
    assert not list(parts.glob(".*.tmp"))
