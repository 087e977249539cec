"""Every Python snippet of docs/pictures.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "pictures.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def test_the_snippets_of_the_pictures_page_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text(encoding="utf-8")
    blocks = [(text.count("\n", 0, m.start()) + 2, m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    assert len(blocks) >= 4 and {lang for _, lang, _ in blocks} == {"python"}
    namespace: dict = {"__name__": "pictures"}
    for line, _, code in blocks:
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
    assert namespace["written"].exists()
