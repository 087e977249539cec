"""Every Python snippet of docs/sandbox.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def test_the_snippets_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text(encoding="utf-8")
    blocks = [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == "python"]
    assert len(blocks) >= 2
    namespace: dict = {"__name__": "sandbox_doc"}
    for line, code in blocks:
        # padded with newlines: tracebacks (and inspect.getsource) see the page's own lines
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "SandboxError: solve() did not return within 1 s" in out and "SandboxSupport(" in out
