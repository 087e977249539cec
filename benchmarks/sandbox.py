"""Cost of running proposed code in the sandbox, against running it in-process.

Prints one JSON object as its last line:
  in_process_call_ms      median cost of one call of a trivial bundled function (the user's code)
  sandboxed_call_ms       median cost of one call of a trivial proposed version, calls spaced by 20 ms
                          (as in an optimization loop, where other work comes between calls)
  sandboxed_call_p10_ms   its 10th percentile (what an idle machine gives)
  sandboxed_call_p90_ms   its 90th percentile
  back_to_back_call_ms    median cost when calls follow each other at once (the worker's spares
                          are forked while calls run)
  target_ms               the aim for sandboxed_call_ms on 2 cores
  worker_start_ms         the first sandboxed call of a process (it starts the worker and its namespaces)
  hung_timeout_s          the timeout of the hung call below
  hung_to_feedback_s      from calling ``time.sleep(10**6)`` to holding its error node
  feedback_delay_ms       hung_to_feedback_s past the timeout
  cpus                    CPUs this process may use
  load                    the machine's load average over the last minute, when the run ended
  support                 what the sandbox could do on this machine (network, read-only files ...)
Run: ``python benchmarks/sandbox.py`` (``taskset -c 0,1 python benchmarks/sandbox.py`` for 2 cores).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import tracegrad as tg

CALLS = 200
PAUSE = 0.02
HUNG_TIMEOUT = 1.0


def trainable() -> tg.Bundle:
    @tg.bundle(trainable=True)
    def solve(x):
        return x + 1

    return solve


def timings(fn, n: int, pause: float = 0.0) -> list[float]:
    """Milliseconds of each of ``n`` calls of ``fn()``, ``pause`` seconds apart."""
    found = []
    for _ in range(n):
        time.sleep(pause)
        start = time.perf_counter()
        fn()
        found.append((time.perf_counter() - start) * 1e3)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    solve = trainable()
    x = tg.node(1, name="x")
    in_process = statistics.median(timings(lambda: solve(x), CALLS))
    solve.parameter.data = "def solve(x):\n    return x + 2\n"
    start = time.perf_counter()
    assert solve(x).data == 3
    worker_start = (time.perf_counter() - start) * 1e3
    sandboxed = timings(lambda: solve(x), CALLS, PAUSE)
    back_to_back = timings(lambda: solve(x), CALLS)
    hung = trainable()
    hung.parameter.data = "def solve(x):\n    import time\n    time.sleep(10**6)\n"
    with tg.sandboxing(timeout=HUNG_TIMEOUT):
        start = time.perf_counter()
        try:
            hung(x)
        except tg.ExecutionError as exc:
            assert exc.exception.reason == "timeout"
        to_feedback = time.perf_counter() - start
    support = tg.sandbox_support()
    figures = {
        "in_process_call_ms": round(in_process, 4),
        "sandboxed_call_ms": round(statistics.median(sandboxed), 3),
        "sandboxed_call_p10_ms": round(percentile(sandboxed, 0.1), 3),
        "sandboxed_call_p90_ms": round(percentile(sandboxed, 0.9), 3),
        "back_to_back_call_ms": round(statistics.median(back_to_back), 3),
        "target_ms": 5.0,
        "worker_start_ms": round(worker_start, 1),
        "hung_timeout_s": HUNG_TIMEOUT,
        "hung_to_feedback_s": round(to_feedback, 3),
        "feedback_delay_ms": round((to_feedback - HUNG_TIMEOUT) * 1e3, 1),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "support": {k: v for k, v in vars(support).items() if k != "notes"},
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
