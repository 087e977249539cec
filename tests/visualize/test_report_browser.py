"""The run report in a real headless browser (Debian's chromium): it renders, and logs nothing to the console.

The page has no script and a content security policy that forbids loading anything, so
any console message -- a script error, or a refused load of an outside resource -- is a
failure. The screenshot is saved as ``tests/artifacts/report.png`` (ignored by git) for
people to look at. ``.ci/run`` installs chromium when it is missing; without it the
test is skipped.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from report_helpers import make_run

import tracegrad as tg

pytestmark = pytest.mark.slow

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "report.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no headless chromium (apt-get install chromium; .ci/run installs it)")


def screenshot(page: Path, png: Path, profile: Path) -> list[str]:
    """Render ``page`` into ``png``; returns the console messages the browser logged."""
    command = [
        browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1280,2000",
        "--enable-logging=stderr",
        "--v=0",
        page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return [line for line in result.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def pixel_bytes(png: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) image data of a PNG file."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


def test_the_browser_reports_console_messages(tmp_path):
    """The check below can fail: a page that logs an error is caught."""
    page = tmp_path / "noisy.html"
    page.write_text("<!DOCTYPE html><title>x</title><script>console.error('noisy page')</script>")
    messages = screenshot(page, tmp_path / "noisy.png", tmp_path / "profile")
    assert any("noisy page" in m for m in messages)


def test_the_report_renders_without_console_messages(tmp_path):
    run_dir = make_run(tmp_path / "run")
    page = tg.report(run_dir)
    png = tmp_path / "report.png"
    messages = screenshot(page, png, tmp_path / "profile")
    assert messages == []
    width, height, pixels = pixel_bytes(png)
    assert (width, height) == (1280, 2000)
    assert len(set(pixels)) > 32  # text, charts and colours, not a blank page
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copyfile(png, ARTIFACT)
    print(f"screenshot of the report: {ARTIFACT}")
