"""Atomic JSON files: strict reads, writes through symbolic links, no temporary files left by killed saves."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import tracegrad as tg
from tracegrad._io import MAX_DEPTH, atomic_write_json, read_json

posix_only = pytest.mark.skipif(os.name != "posix", reason="orphans are recognised by their process on POSIX")

KILLED_SAVE = textwrap.dedent(
    """
    import os, sys
    import tracegrad._io as io
    os.replace = lambda *a: os._exit(9)  # killed between writing and renaming
    io.atomic_write_json(sys.argv[1], {"big": "x" * 100_000})
    """
)


def killed_save(path) -> None:
    """Run a save of ``path`` in another process that dies before its rename."""
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], capture_output=True, timeout=60)
    assert done.returncode == 9, done.stderr


def temporaries(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@posix_only
def test_the_next_save_removes_what_killed_saves_left(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"n": 0})
    for _ in range(5):
        killed_save(target)
    assert len(temporaries(tmp_path)) == 1  # each save removed the one before it: they never pile up
    atomic_write_json(target, {"n": 1})
    assert temporaries(tmp_path) == [] and read_json(target) == {"n": 1}


@posix_only
def test_the_next_load_removes_them_too_and_spares_other_files(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"n": 0})
    killed_save(target)
    killed_save(tmp_path / "other.json")
    (tmp_path / f".state.json.{os.getpid()}.inprogress.tmp").write_text("a save of this process")
    assert read_json(target) == {"n": 0}
    left = temporaries(tmp_path)
    assert f".state.json.{os.getpid()}.inprogress.tmp" in left  # this process's own: maybe in progress
    assert [n for n in left if n.startswith(".other.json.")] and len(left) == 2


@posix_only
def test_a_save_in_progress_in_a_live_process_is_left_alone(tmp_path):
    target = tmp_path / "state.json"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".state.json.{sleeper.pid}.abcd.tmp"
        busy.write_text("being written")
        atomic_write_json(target, {"n": 1})
        assert busy.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_saving_through_a_symbolic_link_writes_the_file_it_names(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "model.json"
    link = tmp_path / "latest.json"
    atomic_write_json(real, {"v": 1})
    link.symlink_to(real)
    written = atomic_write_json(link, {"v": 2})
    assert link.is_symlink() and written == real
    assert read_json(real) == {"v": 2} and read_json(link) == {"v": 2}


def test_a_dangling_link_gets_its_target_created(tmp_path):
    link = tmp_path / "latest.json"
    link.symlink_to(tmp_path / "made.json")
    atomic_write_json(link, {"v": 1})
    assert link.is_symlink() and read_json(tmp_path / "made.json") == {"v": 1}


def test_a_module_saved_through_a_link_keeps_the_link(tmp_path):
    module = tg.Module()
    module.prompt = tg.parameter("hello", tg.Text())
    real = tmp_path / "v1.json"
    real.write_text("{}")
    (tmp_path / "current.json").symlink_to(real)
    module.save(tmp_path / "current.json")
    assert (tmp_path / "current.json").is_symlink() and tg.read_checkpoint(real)["parameters"] == {"prompt": "hello"}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": 1e400}', "too large for a float"),
        (b'{"a": ' + b"9" * 5000 + b"}", "5000 digits"),
        (b"[" * 2000 + b"]" * 2000, f"nested more than {MAX_DEPTH} levels"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels"),
        (b'{"a": 1', "not valid JSON"),
        (b"", "not valid JSON"),
    ],
    ids=["utf8", "nan", "inf", "digits", "deep", "just too deep", "cut", "empty"],
)
def test_a_read_refuses_what_tracegrad_never_writes_in_one_sentence(tmp_path, content, says):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(tg.TracegradError, match=says) as refused:
        read_json(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_nesting_up_to_the_limit_reads(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert read_json(path) is not None
