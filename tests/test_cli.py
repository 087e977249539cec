"""The ``tracegrad`` command prints a checkpoint's parameters and fails clearly on bad input."""

from __future__ import annotations

import pytest

import tracegrad as tg
from tracegrad.cli import main


class Agent(tg.Module):
    def __init__(self):
        self.prompt = tg.node("Be brief. " * 30, trainable=True)
        self.temperature = tg.node(0.3, trainable=True, kind=tg.Number(0, 1))


def test_show_prints_every_parameter_shortened_unless_full(tmp_path, capsys):
    path = tmp_path / "agent.json"
    Agent().save(path, extra={"optimizer": {"type": "OptoPrime"}})
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prompt:" in out and "temperature: 0.3" in out and "extra: optimizer" in out
    assert "..." in out
    assert main(["show", "--full", str(path)]) == 0
    assert "Be brief. " * 30 in capsys.readouterr().out.replace('\\"', '"')


def test_show_of_a_file_that_is_not_a_checkpoint_fails_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    assert main(["show", str(bad)]) == 1
    assert "not a tracegrad module checkpoint" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "missing.json")]) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert tg.__version__ in capsys.readouterr().out
