"""Cost of drawing traces of 1,000 and 10,000 nodes.

Two shapes of trace per size: ``loop`` (one loop body repeated: folded into one box) and
``tangle`` (operations on random earlier results, nothing to fold: cut by ``max_nodes``).
Prints one JSON object as its last line; per shape and size:
  build_s   seconds of ``tg.visualize`` (reading the nodes, folding, building the Digraph)
  render_s  seconds of ``tg.render`` to SVG (the same plus ``dot``; null without ``dot``)
  boxes     the boxes drawn
Run: ``python benchmarks/visualize.py``.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import tracegrad as tg


def loop(size: int) -> tg.Node:
    """``h = h * w + b`` repeated: three nodes per round."""
    w = tg.node(0.5, trainable=True, name="w")
    h = tg.node(1.0, name="h0")
    while size > 0:
        h = h * w + tg.node(0.1)
        size -= 3
    return h


def tangle(size: int, seed: int = 0) -> tg.Node:
    """Each operation combines two random earlier nodes with a random operator."""
    rng = random.Random(seed)
    made = [tg.node(float(i), trainable=i < 10, name=f"p{i}") for i in range(20)]
    ops = (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * 0.5 + b, lambda a, b: b - a * 2)
    while len(made) < size:
        a, b = rng.choice(made), rng.choice(made[-50:])
        made.append(rng.choice(ops)(a, b))
    out = made[-1]
    for n in made[-200:]:
        out = out + n * 0.0
    return out


def measure(out: tg.Node, directory: Path) -> dict[str, float | int | None]:
    start = time.perf_counter()
    picture = tg.visualize(out)
    build = time.perf_counter() - start
    boxes = sum(1 for line in picture.body if "[label=" in line)
    render = None
    if shutil.which("dot"):
        start = time.perf_counter()
        tg.render(out, directory / "trace.svg")
        render = time.perf_counter() - start
    return {"build_s": round(build, 3), "render_s": None if render is None else round(render, 3), "boxes": boxes}


def main() -> None:
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1_000, 10_000):
            for shape in (loop, tangle):
                figures[f"{shape.__name__}_{size}"] = measure(shape(size), Path(tmp))
                print(shape.__name__, size, figures[f"{shape.__name__}_{size}"])
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
