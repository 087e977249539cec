"""JSON files written atomically and read strictly.

A write goes to a temporary file beside the target, named after it and the writing
process (``.<name>.<pid>.<random>.tmp``), is fsynced and renamed over the target, so a
reader never sees a half-written file and a crash loses nothing. Writing through a
symbolic link replaces the file the link points to and keeps the link. A write killed
before its rename leaves its temporary file behind; the next save or load of the same
target removes the ones whose process is gone (on POSIX, where that can be asked).

A read accepts only what tracegrad writes: UTF-8 JSON without ``NaN`` or infinities,
integers of at most ``MAX_INT_DIGITS`` digits and nesting at most ``MAX_DEPTH`` deep.
Anything else raises :class:`~tracegrad.errors.TracegradError` with one sentence
naming the file; a file that cannot be opened raises the ``OSError``.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from tracegrad.errors import TracegradError

#: The deepest nesting of lists and objects a file may have (tracegrad's own are far shallower).
MAX_DEPTH = 100
#: The most digits an integer in a file may have.
MAX_INT_DIGITS = 100


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as JSON to a temporary file beside ``path``, then rename it over;
    returns the path written (the link's target when ``path`` is a symbolic link)."""
    target = _through_links(Path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, ensure_ascii=True, allow_nan=False)
    remove_orphans(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file private; give it the mode a plain open() would have.
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document in ``path``, read strictly (see the module docstring)."""
    name = os.fspath(path)
    remove_orphans(_through_links(Path(path)))
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TracegradError(f"{name!r} is not UTF-8 text (byte {data[exc.start]:#04x} at {exc.start})") from None
    return parse_json(text, name)


def parse_json(text: str, name: str) -> Any:
    """``text`` parsed as strict JSON; ``name`` (a file's, a line's) is used in errors."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_int=_int, parse_float=_float)
    except RecursionError:
        raise TracegradError(f"{name!r} is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise TracegradError(f"{name!r} is not valid JSON: {exc}") from None
    if _depth_over(value, MAX_DEPTH):
        raise TracegradError(f"{name!r} is nested more than {MAX_DEPTH} levels deep")
    return value


def remove_orphans(target: Path) -> list[Path]:
    """Remove the temporary files of writes of ``target`` killed before their rename
    (those whose process has ended); returns them."""
    if os.name != "posix":  # no safe way to ask whether a process still runs
        return []
    removed = []
    prefix = f".{target.name}."
    for found in glob.glob(glob.escape(str(target.parent / prefix)) + "*.tmp"):
        pid = Path(found).name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(found)
                removed.append(Path(found))
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid: leave its file alone
    return True


def _through_links(path: Path) -> Path:
    """The file a (chain of) symbolic link(s) names, else ``path`` itself."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where directories can be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits (more than {MAX_INT_DIGITS})")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:40]} is too large for a float")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether lists and dicts nest more than ``limit`` deep in ``value`` (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _umask() -> int:
    """The process umask (read without changing it, where the platform allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
