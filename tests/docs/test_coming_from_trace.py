"""Every Python snippet of docs/coming-from-trace.md runs, in order, in one namespace, offline."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "coming-from-trace.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def snippets() -> list[tuple[int, str, str]]:
    """``(line, language, code)`` of every fenced block of the page."""
    text = DOC.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def test_every_snippet_is_python():
    blocks = snippets()
    assert len(blocks) > 10
    assert [(line, lang) for line, lang, _ in blocks if lang != "python"] == []


def test_the_snippets_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # files the page writes land here
    namespace: dict = {"__name__": "coming_from_trace"}
    for line, _, code in snippets():
        # padded with newlines: tracebacks (and inspect.getsource) see the page's own lines
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
    assert "offline stand-in" in capsys.readouterr().out
