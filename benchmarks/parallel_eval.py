"""Parallel evaluation: how close the executors come to overlapping every model call.

Each example runs a traced bundled function that calls a ``tg.LLM`` whose scripted
transport sleeps ``latency_ms`` per call (an IO-bound model call through the real
client seam). ``evaluate`` runs the examples on ``LocalExecutor`` (threads) and on
``RayExecutor`` (a local Ray instance), ``concurrency`` calls at a time.

Prints one JSON object as its last line:
  examples, latency_ms, concurrency   the workload
  local / ray                         for each executor:
      wall_s       seconds the evaluation took
      ideal_s      examples x latency / concurrency
      efficiency   ideal_s / wall_s (1.0 = every call overlapped)
  ray.startup_s      seconds Ray and its workers took to start (not in wall_s)
  ray.first_wall_s   the first evaluation on fresh workers (they import and load it)
  ray.workers        worker processes
  same_results       both executors gave the same scores in the same order
Run: ``python benchmarks/parallel_eval.py`` (``--quick`` for a small smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import tracegrad as tg
from tracegrad.train.evaluate import evaluate
from tracegrad.train.executors import LocalExecutor


def scripted_llm(latency_s: float) -> tg.LLM:
    """A model client whose every call takes ``latency_s`` (the transport sleeps)."""

    def reply(request) -> str:
        time.sleep(latency_s)
        return "ANSWER: " + request.messages[-1]["content"].split(":")[-1].strip()

    return tg.LLM("bench/scripted", transport=tg.ScriptedTransport(reply), cache=False)


@tg.model
class Answerer:
    """One traced model call per example."""

    def __init__(self, llm: tg.LLM) -> None:
        self.llm = llm
        self.prompt = tg.node("Answer the question:", trainable=True)

    @tg.bundle
    def ask(self, prompt, question):
        """Ask the model the question."""
        return self.llm.complete(f"{prompt} {question}").text

    def forward(self, question):
        return self.ask(self.prompt, question)


def guide(example, output) -> tuple[float, str]:
    """Score 1 when the answer repeats the question."""
    good = str(output).endswith(example.input)
    return float(good), "right" if good else "the answer must repeat the question"


def run(executor, model: Answerer, dataset: list[dict]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    result = evaluate(model, dataset, guide, executor=executor, progress=False)
    wall = time.perf_counter() - start
    return wall, [r.score for r in result.results]


def figures(wall_s: float, ideal_s: float) -> dict:
    return {"wall_s": round(wall_s, 3), "ideal_s": round(ideal_s, 3), "efficiency": round(ideal_s / wall_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray instance")
    parser.add_argument("--no-ray", action="store_true", help="measure the local executor only")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (40 examples x 50 ms)")
    args = parser.parse_args()
    if args.quick:
        args.examples, args.latency_ms, args.concurrency = 40, 50.0, 8

    latency_s = args.latency_ms / 1000
    ideal_s = args.examples * latency_s / args.concurrency
    model = Answerer(scripted_llm(latency_s))
    dataset = [{"input": f"question {i}", "label": None} for i in range(args.examples)]
    report: dict = {"examples": args.examples, "latency_ms": args.latency_ms, "concurrency": args.concurrency}

    with LocalExecutor(args.concurrency) as local:
        wall, local_scores = run(local, model, dataset)
    report["local"] = figures(wall, ideal_s)
    print(f"local: {report['local']}", flush=True)

    if not args.no_ray:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        from tracegrad.train.ray_executor import RayExecutor

        init = {"num_cpus": args.ray_cpus, "_node_ip_address": "127.0.0.1", "log_to_driver": False}
        with RayExecutor(concurrency=args.concurrency, init_kwargs=init) as ray_executor:
            first, _ = run(ray_executor, model, dataset)
            wall, ray_scores = run(ray_executor, model, dataset)
        report["ray"] = {
            **figures(wall, ideal_s),
            "startup_s": round(ray_executor.startup_s, 3),
            "first_wall_s": round(first, 3),
            "workers": ray_executor.workers,
        }
        report["same_results"] = ray_scores == local_scores
        print(f"ray: {report['ray']}", flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
