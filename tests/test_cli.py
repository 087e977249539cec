"""The ``tracegrad`` command: every command works on a real run directory and fails on bad input with one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from report_helpers import GOOD_CODE, PROMPT, make_run

import tracegrad as tg
from tracegrad.cli import main

COMMANDS = ["demo", "report", "show", "inspect", "graph", "diff"]


class Agent(tg.Module):
    def __init__(self):
        self.prompt = tg.node("Be brief. " * 30, trainable=True)
        self.temperature = tg.node(0.3, trainable=True, kind=tg.Number(0, 1))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run"))


def test_show_prints_every_parameter_shortened_unless_full(tmp_path, capsys):
    path = tmp_path / "agent.json"
    Agent().save(path, extra={"optimizer": {"type": "OptoPrime"}})
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prompt:" in out and "temperature: 0.3" in out and "extra: optimizer" in out
    assert "..." in out
    assert main(["show", "--full", str(path)]) == 0
    assert "Be brief. " * 30 in capsys.readouterr().out.replace('\\"', '"')


def test_show_of_a_run_is_a_table_of_steps_scores_cost_and_the_final_parameters(run_dir, capsys):
    assert main(["show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "4 steps (2 accepted); score 0 -> 1; 3 calls, 1200+180 tokens, $0.0075" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[2] for row in rows] == ["accepted", "rejected", "accepted", "skipped"]
    assert rows[0][3:6] == ["0.5", "0.5", "1"] and rows[0][-1] == "$0.0025"
    assert json.dumps(PROMPT) in out and "finish.code:" in out
    assert main(["show", str(run_dir / "checkpoint.json")]) == 0  # the run's checkpoint file: the same summary
    assert "4 steps" in capsys.readouterr().out
    assert main(["show", str(run_dir / "parameters.json")]) == 0  # the module checkpoint beside it
    assert "finish.code:" in capsys.readouterr().out


def test_inspect_prints_the_exact_prompt_and_reply_of_a_step(run_dir, capsys):
    proposal = next(
        e for line in (run_dir / "log.jsonl").read_text().splitlines() if (e := json.loads(line)).get("step") == 3
    )
    assert main(["inspect", str(run_dir), "--step", "3"]) == 0
    out = capsys.readouterr().out
    for message in proposal["report"]["messages"]:
        assert message["content"] in out
    assert proposal["report"]["reply"] in out and "reasoning: Every output lacks" in out
    assert main(["inspect", str(run_dir), "--step", "4"]) == 0
    assert "the optimizer's model was not asked" in capsys.readouterr().out
    assert main(["inspect", str(run_dir), "--step", "9"]) == 1
    assert "has no step 9 (it has steps 1 to 4)" in capsys.readouterr().err


def test_report_writes_the_page_and_opens_it_on_request(run_dir, tmp_path, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.read_text().startswith("<!DOCTYPE html>")
    assert opened == []
    assert main(["report", str(run_dir), "--open"]) == 0
    assert opened == [(run_dir / "report.html").resolve().as_uri()]


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
def test_graph_draws_a_saved_trace(run_dir, tmp_path, capsys):
    out = tmp_path / "out.svg"
    assert main(["graph", str(run_dir / "trace.json"), "-o", str(out)]) == 0
    assert Path(capsys.readouterr().out.strip()) == out
    assert out.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_graph_without_dot_writes_the_dot_source(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["graph", str(run_dir / "trace.json"), "-o", str(tmp_path / "out.svg")]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == tmp_path / "out.dot" and written.read_text().startswith("digraph")


def test_diff_prints_text_diffs_of_two_checkpoints(run_dir, tmp_path, capsys):
    start = json.loads((run_dir / "checkpoint.json").read_text())["history"]
    first = tmp_path / "first.json"
    model = tg.Module()
    model.save(first)
    payload = json.loads(first.read_text())
    payload["parameters"] = start["versions"][start["initial_version"]]
    first.write_text(json.dumps(payload))
    assert main(["diff", str(first), str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"+{PROMPT.splitlines()[-1]}" in out and f"+{GOOD_CODE.splitlines()[-1]}" in out
    assert "-    return text" in out and f"{first}: finish.code" in out
    assert main(["diff", str(run_dir), str(run_dir / "parameters.json")]) == 0
    assert "are the same" in capsys.readouterr().out


def test_demo_delegates_to_the_demo_module(monkeypatch, capsys):
    seen = []
    demo = types.ModuleType("tracegrad.demo")
    demo.add_arguments = lambda parser: parser.add_argument("--steps", type=int, default=1, help="how many steps")
    demo.run = lambda args: seen.append(args.steps) or 0
    monkeypatch.setitem(sys.modules, "tracegrad.demo", demo)
    assert main(["demo", "--steps", "3"]) == 0 and seen == [3]
    with pytest.raises(SystemExit) as info:
        main(["demo", "--help"])
    assert info.value.code == 0 and "--steps" in capsys.readouterr().out


def test_demo_without_the_demo_module_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tracegrad.demo", None)  # importing it fails
    assert main(["demo"]) == 1
    assert capsys.readouterr().err.strip() == "tracegrad demo: the demo is not part of this installation of tracegrad"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and f"usage: tracegrad {command}" in capsys.readouterr().out


def test_the_installed_script_runs(run_dir):
    script = Path(sys.executable).with_name("tracegrad")
    result = subprocess.run([str(script), "show", str(run_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "4 steps (2 accepted)" in result.stdout
    result = subprocess.run([str(script), "show", str(run_dir / "nowhere")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def deep(n: int) -> str:
    return "[" * n + "]" * n


BAD_FILES = {
    "missing": None,
    "bad JSON": b'{"format": ',
    "invalid UTF-8": b'{"format": "\xff"}',
    "nested 2,000 deep": ('{"format": "tracegrad.module", "parameters": ' + deep(2000) + "}").encode(),
    "a huge integer": b'{"format": "tracegrad.module", "parameters": {"x": ' + b"7" * 5000 + b"}}",
    "wrong types": b'{"format": "tracegrad.module", "parameters": [1, 2]}',
    "not a checkpoint": b'{"hello": 1}',
}


def bad_input(tmp_path: Path, damage: str, as_run: bool) -> Path:
    """A file (or a run directory whose checkpoint is that file) damaged as ``damage`` says."""
    target = tmp_path / "run" if as_run else tmp_path / "bad.json"
    content = BAD_FILES[damage]
    if as_run and content is not None:
        target.mkdir()
        content = content.replace(b"tracegrad.module", b"tracegrad.train")
        (target / "checkpoint.json").write_bytes(content)
    elif content is not None:
        target.write_bytes(content)
    return target


@pytest.mark.parametrize("damage", BAD_FILES)
@pytest.mark.parametrize("command", ["report", "show-run", "show-file", "inspect", "graph", "diff"])
def test_bad_input_exits_1_with_one_line(command, damage, run_dir, tmp_path, capsys):
    bad = str(bad_input(tmp_path, damage, as_run=command in ("report", "show-run", "inspect")))
    argv = {
        "report": ["report", bad],
        "show-run": ["show", bad],
        "show-file": ["show", bad],
        "inspect": ["inspect", bad, "--step", "1"],
        "graph": ["graph", bad, "-o", str(tmp_path / "out.svg")],
        "diff": ["diff", str(run_dir), bad],
    }[command]
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith(f"tracegrad {argv[0]}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and captured.out == ""


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert tg.__version__ in capsys.readouterr().out
