"""Hostile inputs, measured: what each one costs and how many break a run.

* the time to parse (and refuse) a cut-off reply of a megabyte;
* byte-flipped response caches: how many of them make a call raise;
* a cache in an unusable location: warnings logged and file handles left open after 20 calls;
* temporary files left behind by saves killed before their rename;
* hostile module checkpoints: how many raise something other than ``TracegradError``;
* a server reporting -1,000,000 prompt tokens: calls let through a 2,000-token budget.

Prints one JSON line of figures last. ``python benchmarks/robustness.py [--kills N] [--flips N]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import tracegrad as tg
from tracegrad.llm import LLM, Budget, BudgetExceeded, ResponseCache, ScriptedTransport, TransportResponse
from tracegrad.llm.structured import ParseFailure, extract_json

KILLED_SAVE = (
    "import os, sys\nimport tracegrad._io as io\nos.replace = lambda *a: os._exit(9)\n"
    "io.atomic_write_json(sys.argv[1], {'big': 'x' * 700_000})\n"
)


def cut_off_reply_seconds() -> float:
    reply = '{"reasoning": "' + "x" * 1_000_000
    start = time.perf_counter()
    with contextlib.suppress(ParseFailure):
        extract_json(reply)
    return time.perf_counter() - start


def flipped_caches(count: int, root: Path) -> int:
    """How many of ``count`` byte-flipped caches make a call raise."""
    llm = LLM("m", transport=ScriptedTransport(lambda r: "a" * 50), cache=ResponseCache(root / "base"), temperature=0)
    for i in range(30):
        llm.complete(f"question {i}")
    with sqlite3.connect(root / "base" / "llm.sqlite") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pristine = (root / "base" / "llm.sqlite").read_bytes()
    raised = 0
    for seed in range(count):
        rnd = random.Random(seed)
        damaged = bytearray(pristine)
        for _ in range(rnd.randint(1, 20)):
            damaged[rnd.randrange(len(damaged))] = rnd.randrange(256)
        where = root / f"flip{seed}"
        where.mkdir()
        (where / "llm.sqlite").write_bytes(damaged)
        flipped = LLM("m", transport=ScriptedTransport(lambda r: "b"), cache=ResponseCache(where), temperature=0)
        try:
            for i in range(30):
                flipped.complete(f"question {i}")
        except Exception:  # counted: this is what must not happen
            raised += 1
    return raised


def unusable_cache(root: Path) -> tuple[int, int]:
    """Warnings logged and file handles left open by 20 calls with a cache that is garbage."""
    (root / "garbage").mkdir()
    (root / "garbage" / "llm.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("tracegrad.llm").addHandler(handler)
    try:
        llm = LLM(
            "m", transport=ScriptedTransport(lambda r: "ok"), cache=ResponseCache(root / "garbage"), temperature=0
        )
        before = len(os.listdir("/proc/self/fd")) if sys.platform == "linux" else 0
        for i in range(20):
            llm.complete(f"call {i}")
        after = len(os.listdir("/proc/self/fd")) if sys.platform == "linux" else 0
    finally:
        logging.getLogger("tracegrad.llm").removeHandler(handler)
    return sum(r.levelno >= logging.WARNING for r in records), max(0, after - before)


def killed_saves(count: int, root: Path) -> tuple[int, int]:
    """Temporary files (and their bytes) beside a target after ``count`` killed saves."""
    target = root / "kills" / "state.json"
    target.parent.mkdir()
    tg.Module().save(target)
    for _ in range(count):
        done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], capture_output=True, timeout=60)
        if done.returncode != 9:
            raise RuntimeError(f"the save was not killed where planned: {done.stderr.decode()[-500:]}")
    left = [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    return len(left), sum(p.stat().st_size for p in left)


def hostile_checkpoints(root: Path) -> tuple[int, int]:
    """(loads tried, loads that raised something other than TracegradError)."""
    agent = tg.Module()
    agent.prompt = tg.parameter("hi", tg.Text())
    agent.k = tg.parameter(2, tg.Integer(0, 5))
    good = {"format": "tracegrad.module", "version": 1, "module": "M", "parameters": {"prompt": "a", "k": 1}}
    fields = ["format", "version", "module", "parameters", "extra"]
    values = [None, "1", 1, True, [], {}, -1, 10**80, "x" * 10, {"prompt": None}, {"k": "abc"}]
    docs = [json.dumps({**good, f: v}).encode() for f in fields for v in values]
    docs += [b"\xff\xfe", b'{"a": NaN}', b"[" * 2000 + b"]" * 2000, b'{"version": ' + b"9" * 5000 + b"}", b""]
    other = 0
    for i, doc in enumerate(docs):
        path = root / f"hostile{i}.json"
        path.write_bytes(doc)
        try:
            agent.load(path)
        except tg.TracegradError:
            pass
        except Exception:  # counted: this is what must not happen
            other += 1
    return len(docs), other


def lying_server_calls() -> int:
    lie = TransportResponse(text="ok", prompt_tokens=-1_000_000, completion_tokens=5, cost_usd=0.0)
    llm = LLM("m", transport=ScriptedTransport(lambda r: lie), cache=False, budget=Budget(max_tokens=2000))
    made = 0
    try:
        for _ in range(20):
            llm.complete("Summarize the quarterly report in two sentences. " * 30)
            made += 1
    except BudgetExceeded:
        pass
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--flips", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        logging.disable(logging.WARNING)
        flips_raised = flipped_caches(args.flips, root)
        logging.disable(logging.NOTSET)
        warnings, leaked = unusable_cache(root)
        orphans, orphan_bytes = killed_saves(args.kills, root)
        tried, raw_errors = hostile_checkpoints(root)
        figures = {
            "cut_off_1mb_reply_s": round(cut_off_reply_seconds(), 4),
            "flipped_caches": args.flips,
            "flipped_caches_raising": flips_raised,
            "unusable_cache_warnings_20_calls": warnings,
            "unusable_cache_fds_leaked_20_calls": leaked,
            "killed_saves": args.kills,
            "orphan_temp_files": orphans,
            "orphan_temp_bytes": orphan_bytes,
            "hostile_checkpoints": tried,
            "hostile_checkpoints_raw_errors": raw_errors,
            "lying_server_calls_through_2000_token_budget": lying_server_calls(),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
