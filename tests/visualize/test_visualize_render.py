"""The file is what its name says: the format follows the extension; without dot, the DOT source under its true name."""

from __future__ import annotations

import logging
import shutil

import pytest

import tracegrad as tg

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
MAGIC = {"svg": b"<svg", "png": b"\x89PNG", "pdf": b"%PDF"}


def output() -> tg.Node:
    x = tg.node(2.0, trainable=True, name="x")
    y = x * 3 + 1
    y.backward("smaller")
    return y


@needs_dot
@pytest.mark.parametrize("name", ["trace.svg", "trace.png", "trace.pdf", "TRACE.SVG"])
def test_dot_draws_the_format_the_extension_names(tmp_path, name):
    path = tg.render(output(), tmp_path / "pictures" / name)
    assert path == tmp_path / "pictures" / name
    assert MAGIC[path.suffix[1:].lower()] in path.read_bytes()[:400]
    assert [p.name for p in path.parent.iterdir()] == [name]  # nothing else is left beside it


@pytest.mark.parametrize("name", ["trace.dot", "trace.gv"])
def test_dot_and_gv_files_hold_the_dot_source(tmp_path, name):
    y = output()
    path = tg.render(y, tmp_path / name)
    assert path == tmp_path / name and path.read_text() == tg.to_dot(y)


def test_a_loaded_trace_renders_like_its_nodes(tmp_path):
    y = output()
    saved = tg.load_trace(tg.save_trace(y, tmp_path / "t.json"))
    assert tg.render(saved, tmp_path / "saved.dot").read_text() == tg.to_dot(y)


@pytest.mark.parametrize("name", ["trace.txt", "trace.x11", "trace"])
def test_an_unknown_or_missing_extension_is_a_clear_error_and_writes_nothing(tmp_path, name):
    with pytest.raises(tg.TracegradError, match=r"extension|format"):
        tg.render(output(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["trace.png", "trace.svg"])
def test_without_dot_the_dot_source_is_written_under_its_true_name(tmp_path, monkeypatch, caplog, name):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no dot program to be found
    y = output()
    with caplog.at_level(logging.WARNING):
        path = tg.render(y, tmp_path / name)
    assert path == tmp_path / "trace.dot"
    assert path.read_text() == tg.to_dot(y)
    assert not (tmp_path / name).exists()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "\n" not in said[0]
    assert "apt-get install graphviz" in said[0] and "brew install graphviz" in said[0] and str(path) in said[0]


def test_a_failing_dot_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: renderer for svg is unavailable' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out_dir = tmp_path / "out"
    with pytest.raises(tg.TracegradError, match=r"dot could not draw .*renderer for svg is unavailable"):
        tg.render(output(), out_dir / "trace.svg")
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_render_takes_the_picture_options(tmp_path):
    y = output()
    path = tg.render(y, tmp_path / "t.dot", title="Step 3", rankdir="LR")
    text = path.read_text()
    assert "rankdir=LR" in text and 'label="Step 3"' in text
