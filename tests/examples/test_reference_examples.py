"""The reference library's own examples, rewritten for tracegrad, improve offline."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import tracegrad as tg

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}
    env.pop("TRACEGRAD_MODEL", None)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "offline stand-in" in result.stdout
    return result.stdout


def load_example(name: str) -> ModuleType:
    """An example script imported as a module of its own (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(Path(name).stem, EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_quick_start_trains_the_code_until_every_case_passes(tmp_path):
    out = run("trace_quickstart.py", cwd=tmp_path)
    before, after = map(int, re.search(r"test cases passed: (\d)/4 -> (\d)/4", out).groups())
    assert (before, after) == (2, 4)
    assert "odd-length list empties" in out  # the crash of the first rewrite was fed back, then fixed
    assert re.findall(r"^epoch (\d)", out, re.M) == ["1", "2", "3"]
    assert "strange_sort_list([5, 3, 2, 5]) = [2, 5, 3, 5]" in out
    saved = tg.read_checkpoint(tmp_path / "out" / "strange_sort_list.json")
    assert "if lst:" in saved["parameters"]["strange_sort_list_code"]
    assert saved["extra"]["optimizer"]["step_count"] == 2


def test_the_greeting_agent_learns_the_language_and_the_name(tmp_path):
    out = run("greeting_agent.py", cwd=tmp_path)
    assert re.search(r"correct greetings: 0/2 -> 2/2", out)
    assert "'Hola, soy Juan.' -> 'Hola, Juan!': Correct" in out
    assert "\"Hello, I'm John.\" -> 'Hello, John!': Correct" in out
    assert "decide_lang.code:" in out and "instruct2:" in out  # both code and a prompt were trained


def test_the_battleship_agent_hits_more_after_training(tmp_path):
    out = run("battleship.py", cwd=tmp_path)
    before, after = map(float, re.search(r"hits per shot: ([\d.]+) -> ([\d.]+)", out).groups())
    assert before == 0.0 and after > 0.4
    assert re.findall(r"^round (\d)", out, re.M) == ["1", "2", "3", "4"]
    assert "Invalid shot None" in out  # the first feedback: the untrained agent returns None
    assert 'return {"targets": targets}' in out  # reason() was rewritten as well as select_coordinate()


def test_the_greeting_agent_keeps_its_best_parameters_when_a_step_makes_it_worse(monkeypatch, capsys):
    example = load_example("greeting_agent.py")
    name_only = "Extract the customer's name. Reply with the name only."
    broken = "def decide_lang(self, response):\n    raise ValueError('no language')\n"
    replies = [
        json.dumps({"reasoning": "ask for the name only", "suggestion": {"instruct2": name_only}}),
        json.dumps({"reasoning": "a worse rewrite", "suggestion": {"decide_lang.code": broken}}),
    ]
    task = tg.LLM("stand-in/task", transport=tg.ScriptedTransport(example.stand_in_task_model), cache=False)
    optimizer = tg.LLM("scripted/optimizer", transport=tg.ScriptedTransport(replies), cache=False)
    assert example.train(task, optimizer, epochs=2) == (0, 1)  # Juan greeted right after step 1, nobody after step 2
    out = capsys.readouterr().out
    assert "The agent raised ValueError('no language')" in out
    assert "keeping the best parameters" in out and "correct greetings: 0/2 -> 1/2" in out
    assert f"--- instruct2\n{name_only}" in out  # the good step's instruction stays ...
    assert "raise ValueError" not in out.split("correct greetings")[-1]  # ... and the broken code is undone


def test_the_greeting_feedback_names_what_is_wrong_with_extra_words():
    example = load_example("greeting_agent.py")
    feedback = example.feedback_fn("Hola, {user_name}!, Juan!", "es", "Juan")
    assert feedback.startswith("Incorrect: the greeting must be exactly 'Hola, Juan!'")
    assert example.feedback_fn("Hola, Juan!", "es", "Juan") == "Correct"
