"""OptoPrime prompt size and step overhead, side by side with the reference library.

The same workflow is traced with tracegrad and (in its own environment) with
``trace-opt``: a chain of ``scale`` / ``+`` / ``clip`` calls ending in a trainable
function, with a bounded number parameter, a plain number parameter and a code
parameter, the same inputs, values and feedback. Both optimizers build their prompt
for it (no model is called) and both prompts are counted with the same tokenizer.

``step_overhead_ms`` is the median time of ``OptoPrime.step()`` on the 100-op graph
minus the time spent inside the model call (answered instantly by a scripted model);
``step_ms`` is the whole ``step()`` including the client around that scripted model.

Prints one JSON line last.
"""

from __future__ import annotations

import json
import linecache
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _reference import run_reference

import tracegrad as tg
from tracegrad.llm import LLM, LiteLLMTransport, ScriptedTransport
from tracegrad.optimizers.llm import OptoPrime

SIZES = (20, 100)
FEEDBACK = "The result should be close to 10.0; it is far too large."
TOKENIZER_MODEL = "gpt-4o"

# The graph, written once for both libraries: ``bundle`` / ``node`` / ``parameter`` are
# bound to each library's own functions before this is executed.
GRAPH = '''
@bundle
def scale(value, factor):
    """Multiply the value by the factor."""
    return value * factor

@bundle
def clip(value, limit):
    """Clip the value to the range [-limit, limit]."""
    return max(-limit, min(limit, value))

@bundle(trainable=True)
def finish(value):
    """Format the final value as the result."""
    return f"result: {value:.3f}"

def build(n_ops):
    factor = parameter(1.5, "factor", "number in [0, 5]")
    limit = parameter(50.0, "limit", None)
    h = node(1.0, "start")
    ops = [lambda h, i: scale(h, factor), lambda h, i: h + node(float(i % 7), f"x{i}"), lambda h, i: clip(h, limit)]
    for i in range(n_ops - 1):
        h = ops[i % 3](h, i)
    out = finish(h)
    return [factor, limit, finish_parameter()], out
'''

REFERENCE = """
import json, linecache, warnings
warnings.filterwarnings("ignore")
from opto.trace import node as _node, bundle as _bundle
from opto.optimizers import OptoPrime
from opto.utils.llm import AbstractModel

def bundle(fn=None, **options): return _bundle(**options) if fn is None else _bundle()(fn)
def node(v, name): return _node(v, name=name)
def parameter(v, name, constraint): return _node(v, name=name, trainable=True, constraint=constraint)
def finish_parameter(): return finish.parameter
linecache.cache["<graph>"] = (len(GRAPH), None, GRAPH.splitlines(True), "<graph>")
exec(compile(GRAPH, "<graph>", "exec"))

class NoModel(AbstractModel):
    def __init__(self): pass

params, out = build(N_OPS)
out.backward(FEEDBACK)
opt = OptoPrime(params, llm=NoModel())
system, user = opt.construct_prompt(opt.summarize())
print(json.dumps({"system": system, "user": user}))
"""


def build_tracegrad(n_ops: int) -> tuple[list, tg.Node]:
    scope: dict = {
        "bundle": tg.bundle,
        "node": lambda v, name: tg.node(v, name=name),
        "parameter": lambda v, name, c: tg.parameter(v, tg.Number(0, 5) if c else tg.Number(), name=name),
    }
    scope["finish_parameter"] = lambda: scope["finish"].parameter
    linecache.cache["<graph>"] = (len(GRAPH), None, GRAPH.splitlines(True), "<graph>")
    exec(compile(GRAPH, "<graph>", "exec"), scope)  # the benchmark's own graph
    return scope["build"](n_ops)


def count_tokens(text: str) -> int:
    tokens, approximate = LiteLLMTransport().count_tokens(TOKENIZER_MODEL, text)
    assert not approximate, f"no tokenizer for {TOKENIZER_MODEL}"
    return tokens


def main() -> None:
    no_change = json.dumps({"reasoning": "nothing to change", "answer": None, "suggestion": {}})
    figures: dict = {"tokenizer": TOKENIZER_MODEL}
    overheads: list[float] = []
    totals: list[float] = []
    for n in SIZES:
        params, out = build_tracegrad(n)
        out.backward(FEEDBACK)
        transport = ScriptedTransport(lambda request: no_change)
        opt = OptoPrime(params, llm=LLM("scripted/model", transport=transport, cache=False))
        opt.step()
        sent = transport.requests[0].messages
        figures[f"prompt_tokens_{n}"] = count_tokens("\n".join(m["content"] for m in sent))
        if n == SIZES[-1]:
            for _ in range(200):
                out.backward(FEEDBACK)  # a committed step consumes its feedback: give it again
                started = time.perf_counter()
                report = opt.step()
                assert report.calls == 1, report.summary()
                totals.append(1000 * (time.perf_counter() - started))
                overheads.append(report.overhead_ms)
    figures["step_overhead_ms"] = round(statistics.median(overheads), 3)
    figures["step_ms"] = round(statistics.median(totals), 3)

    for n in SIZES:  # one fresh process per graph, as for tracegrad's own names
        prompt = run_reference(f"N_OPS = {n}\nFEEDBACK = {FEEDBACK!r}\nGRAPH = {GRAPH!r}\n" + REFERENCE)
        if prompt is None:
            figures["reference"] = "not installed (make refenv)"
            break
        ref_tokens = count_tokens(prompt["system"] + "\n" + prompt["user"])
        figures[f"reference_prompt_tokens_{n}"] = ref_tokens
        figures[f"token_ratio_{n}"] = round(figures[f"prompt_tokens_{n}"] / ref_tokens, 3)
    else:
        figures["token_ratio"] = max(figures[f"token_ratio_{n}"] for n in SIZES)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
