"""The reference library's side (``trace-opt``, import ``opto``), run in its own environment.

:func:`launch` (called from our environment) runs this module with the reference
interpreter (``python -m opto_problems.reference JOB``) and returns the JSON object it
prints last, or ``{"error": ...}`` when it failed, so that a benchmark can still print
its figures. Under the reference interpreter, :func:`main` runs the job: the shared
problems, or timed OptoPrime steps on a given graph, with the reference's own
``LiteLLM`` backend pointed at an OpenAI-compatible server (``OPENAI_API_BASE``).
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent  # benchmarks/


def launch(job: dict[str, Any], api_base: str | None, timeout: float) -> dict[str, Any] | None:
    """Run ``job`` under the reference interpreter against the server at ``api_base``
    (None: a job that calls no model).

    Returns its result, ``{"error": ...}`` when it failed or ran past ``timeout``
    seconds, or None when the reference library is not installed. Its progress lines
    (stderr) are passed through.
    """
    from _reference import reference_python  # benchmarks/ is on the path of every benchmark

    python = reference_python()
    if python is None:
        return None
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONWARNINGS": "ignore",
        "TRACE_LITELLM_MODEL": "openai/local",
    }
    if api_base is not None:
        env.update(OPENAI_API_BASE=api_base, OPENAI_BASE_URL=api_base, OPENAI_API_KEY="none")
    command = [python, "-m", "opto_problems.reference", json.dumps(job)]
    tail: collections.deque[str] = collections.deque(maxlen=30)
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(command, cwd=HERE, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)

        def relay() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                tail.append(line)
                sys.stderr.write(line)

        relaying = threading.Thread(target=relay, daemon=True)
        relaying.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"the reference run took longer than {timeout:g} s"}
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            relaying.join(timeout=5)
        stdout.seek(0)
        out = stdout.read()
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"the reference run exited with code {proc.returncode}: {''.join(tail)[-1500:]}"}
    try:
        return json.loads(lines[-1])
    except ValueError:
        return {"error": f"the reference run printed no JSON: {lines[-1][:300]}"}


# -- below: runs under the reference interpreter -------------------------------------------


def _counting_llm(params: dict[str, Any]) -> Any:
    """The reference's LiteLLM backend for ``openai/local``, with ``params`` sent on
    every call and its calls and tokens counted in ``.spent``."""
    from opto.utils.llm import LiteLLM

    from opto_problems.runner import SPENT

    class Counting(LiteLLM):
        def __init__(self) -> None:
            self.spent = dict.fromkeys(SPENT, 0)
            super().__init__("openai/local")

        @property
        def model(self) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                self.spent["calls"] += 1
                response = self._model(*args, **{**params, **kwargs})
                self.spent["prompt_tokens"] += response.usage.prompt_tokens
                self.spent["completion_tokens"] += response.usage.completion_tokens
                return response

            return call

    return Counting()


class _Reference:
    """The reference library as a problem adapter (see ``opto_problems.runner.Lib``)."""

    def __init__(self) -> None:
        from opto.trace import bundle, node

        self.bundle = bundle
        self._node = node

    def node(self, value: Any, name: str) -> Any:
        return self._node(value, name=name)

    def param(self, value: Any, name: str, spec: Any) -> Any:
        return self._node(value, name=name, trainable=True, constraint=spec.words())

    def call(self, fn: Any, *args: Any) -> tuple[Any, str | None]:
        from opto.trace.errors import ExecutionError

        try:
            return fn(*args), None
        except ExecutionError as err:
            text = str(err.exception_node.data)
            found = re.fullmatch(r"\((\w+)\) (.*)", text, re.S)  # "(ZeroDivisionError) division by zero"
            return err.exception_node, f"{found[1]}: {found[2]}" if found else text

    def assign(self, param: Any, value: Any) -> None:
        param._set(value)

    def step(self, optimizer: Any, output: Any, feedback: str) -> dict[str, int]:
        before = dict(optimizer.llm.spent)
        optimizer.zero_feedback()
        output.backward(feedback)
        optimizer.step()
        return {k: v - before[k] for k, v in optimizer.llm.spent.items()}


def _problems(job: dict[str, Any]) -> dict[str, Any]:
    from opto.optimizers import OptoPrime

    from opto_problems.problems import PROBLEMS
    from opto_problems.runner import progress, run_problem

    lib = _Reference()
    records = []
    for name, seed in job["runs"]:  # (problem name, seed) pairs, in order
        params = {**job["params"], "seed": seed}

        def optimizer(parameters: list[Any], params: dict[str, Any] = params) -> Any:
            return OptoPrime(parameters, llm=_counting_llm(params))

        record = run_problem(PROBLEMS[name], lib, optimizer, job["steps"])
        print(progress("reference", seed, record), file=sys.stderr, flush=True)
        records.append(record)
    return {"records": records}


def _check(job: dict[str, Any]) -> dict[str, Any]:
    from opto_problems.problems import PROBLEMS
    from opto_problems.runner import check_problem

    broken = [check_problem(PROBLEMS[name], _Reference()) for name in job["problems"]]
    return {"broken": [b for b in broken if b]}


def _step(job: dict[str, Any]) -> dict[str, Any]:
    """Timed OptoPrime steps on the graph of ``job["graph"]`` (see benchmarks/local_model.py)."""
    import linecache

    from opto.optimizers import OptoPrime
    from opto.trace import bundle as _bundle
    from opto.trace import node as _node

    def bundle(fn: Any = None, **options: Any) -> Any:
        return _bundle(**options) if fn is None else _bundle()(fn)

    scope: dict[str, Any] = {
        "bundle": bundle,
        "node": lambda v, name: _node(v, name=name),
        "parameter": lambda v, name, constraint: _node(v, name=name, trainable=True, constraint=constraint),
    }
    scope["finish_parameter"] = lambda: scope["finish"].parameter
    graph = job["graph"]
    linecache.cache["<graph>"] = (len(graph), None, graph.splitlines(True), "<graph>")
    exec(compile(graph, "<graph>", "exec"), scope)
    params, out = scope["build"](job["n_ops"])
    llm = _counting_llm(job["params"])
    opt = OptoPrime(params, llm=llm)
    steps = []
    for _ in range(job["steps"]):
        before = dict(llm.spent)
        opt.zero_feedback()
        out.backward(job["feedback"], retain_graph=True)  # the same graph every step, as on our side
        started = time.perf_counter()
        opt.step()
        seconds = time.perf_counter() - started
        steps.append({"seconds": round(seconds, 3), **{k: v - before[k] for k, v in llm.spent.items()}})
        print(f"reference step: {steps[-1]}", file=sys.stderr, flush=True)
    return {"steps": steps}


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    job = json.loads(sys.argv[1])
    result = {"problems": _problems, "step": _step, "check": _check}[job["task"]](job)
    print(json.dumps(result, default=repr))


if __name__ == "__main__":
    main()
