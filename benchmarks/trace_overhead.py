"""Cost of tracing and of backward, beside the reference library when it is installed.

Prints one JSON object as its last line:
  traced_op_us            mean cost of one traced ``+`` on a float node
  plain_op_us             the same ``+`` on a plain float
  backward_chain_3000_ms  backward on a 3,000-operation chain from one parameter
  backward_fanin_1000_ms  backward on a sum of 1,000 parameters
  subgraph_chain_3000_ms  extracting the optimizer's subgraph of that chain
  backward_ms_per_1k_nodes  {size: ms per 1,000 nodes} for 1k / 10k / 100k chains
  linearity               per-node cost at 100k divided by per-node cost at 1k (1.0 = linear)
  reference               the same figures for trace-opt, and ratios, when it is installed
Run: ``python benchmarks/trace_overhead.py`` (``make refenv`` installs the reference).
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference import run_reference

import tracegrad as tg


def best_of(fn, repeat: int) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs (fn returns its own timing)."""
    return statistics.median(fn() for _ in range(repeat))


def traced_op_us(n: int = 200_000) -> float:
    x = tg.node(1.0)
    start = time.perf_counter()
    for _ in range(n):
        x + 1.0
    return (time.perf_counter() - start) / n * 1e6


def plain_op_us(n: int = 200_000) -> float:
    x = 1.0
    start = time.perf_counter()
    for _ in range(n):
        x + 1.0
    return (time.perf_counter() - start) / n * 1e6


def chain(n: int) -> tuple[tg.ParameterNode, tg.Node]:
    p = tg.parameter(1.0, name="p")
    z = p
    for _ in range(n):
        z = z + 1.0
    return p, z


def backward_chain_s(n: int) -> float:
    _, z = chain(n)
    gc.collect()
    start = time.perf_counter()
    z.backward("feedback")
    return time.perf_counter() - start


def backward_fanin_s(n: int) -> float:
    params = [tg.parameter(float(i), name=f"p{i}") for i in range(n)]
    total = params[0]
    for p in params[1:]:
        total = total + p
    gc.collect()
    start = time.perf_counter()
    total.backward("feedback")
    return time.perf_counter() - start


def subgraph_chain_s(n: int) -> float:
    p, z = chain(n)
    z.backward("feedback")
    start = time.perf_counter()
    tg.subgraph([p])
    return time.perf_counter() - start


REFERENCE = r"""
import gc, json, statistics, time, logging
logging.disable(logging.CRITICAL)
from opto.trace import node

def traced_op_us(n=5000):
    x = node(1.0)
    t = time.perf_counter()
    for _ in range(n):
        x + 1.0
    return (time.perf_counter() - t) / n * 1e6

def chain(n):
    p = node(1.0, trainable=True)
    z = p
    for _ in range(n):
        z = z + 1.0
    return z

def backward_chain_s(n):
    z = chain(n)
    gc.collect()
    t = time.perf_counter()
    z.backward("feedback")
    return time.perf_counter() - t

def backward_fanin_s(n):
    params = [node(float(i), trainable=True) for i in range(n)]
    total = params[0]
    for p in params[1:]:
        total = total + p
    gc.collect()
    t = time.perf_counter()
    total.backward("feedback")
    return time.perf_counter() - t

print(json.dumps({
    "traced_op_us": statistics.median(traced_op_us() for _ in range(3)),
    "backward_chain_3000_ms": statistics.median(backward_chain_s(3000) for _ in range(3)) * 1e3,
    "backward_fanin_1000_ms": statistics.median(backward_fanin_s(1000) for _ in range(3)) * 1e3,
    "backward_ms_per_1k_nodes": {n: backward_chain_s(n) * 1e6 / n for n in (1000, 3000)},
}))
"""


def main() -> None:
    sizes = (1_000, 10_000, 100_000)
    per_1k = {n: best_of(lambda n=n: backward_chain_s(n), 3 if n < 100_000 else 2) * 1e6 / n for n in sizes}
    figures = {
        "traced_op_us": round(best_of(traced_op_us, 5), 3),
        "plain_op_us": round(best_of(plain_op_us, 5), 3),
        "backward_chain_3000_ms": round(best_of(lambda: backward_chain_s(3000), 7) * 1e3, 3),
        "backward_fanin_1000_ms": round(best_of(lambda: backward_fanin_s(1000), 7) * 1e3, 3),
        "subgraph_chain_3000_ms": round(best_of(lambda: subgraph_chain_s(3000), 5) * 1e3, 3),
        "backward_ms_per_1k_nodes": {str(n): round(v, 3) for n, v in per_1k.items()},
        "linearity": round(per_1k[100_000] / per_1k[1_000], 2),
    }
    reference = run_reference(REFERENCE)
    if reference is None:
        figures["reference"] = "trace-opt not installed (make refenv)"
    else:
        figures["reference"] = reference
        figures["speedup_vs_reference"] = {
            key: round(reference[key] / figures[key], 1)
            for key in ("traced_op_us", "backward_chain_3000_ms", "backward_fanin_1000_ms")
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
