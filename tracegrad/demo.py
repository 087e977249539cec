"""``tracegrad demo``: optimize a small pipeline for real with the embedded model.

The pipeline quotes shipping prices: ``to_kg`` reads a weight such as ``"500 g"`` and
``quote`` charges ``base_fee`` plus $4 per kilogram. Both are parameters, a function's
code and a number: the parser starts wrong (it ignores the unit, so 500 g is read as
500 kg), the fee starts right and must stay so. ``tg.train`` runs the examples, turns
each wrong quote into feedback, asks the model for new values, and keeps a proposal
only when the score does not drop. The score before and after, the trace picture and
the HTML report of the run are printed at the end.

It runs offline on the embedded model (``make demo``; under a minute on two cores,
depending on the CPU), or on any model with ``--model`` (e.g.
``--model openai/gpt-4o-mini``) or ``$TRACEGRAD_MODEL``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

import tracegrad as tg

BASE_FEE = 5.0
RATE = 4.0
#: Weights as customers write them, with their weight in kilograms.
WEIGHTS = [("2 kg", 2.0), ("500 g", 0.5), ("1.5 kg", 1.5), ("250 g", 0.25)]
#: The right quote lines: the weight read in kg and a $5 fee plus $4 per kg.
EXAMPLES = [tg.train.Example(w, f"{kg:.2f} kg: ${BASE_FEE + RATE * kg:.2f}") for w, kg in WEIGHTS]
_LINE = re.compile(r"^(-?[\d.]+) kg: \$(-?[\d.]+)$")


class ShippingQuote(tg.Module):
    """Quote the shipping price of a parcel from its weight as written by a customer."""

    def __init__(self) -> None:
        self.base_fee = tg.parameter(5.0, tg.Number(low=0, high=50), description="dollars charged per parcel")

    @tg.bundle(trainable=True)
    def to_kg(self, weight):
        """Convert a weight such as '2 kg' or '500 g' to kilograms."""
        number, unit = weight.split()
        return float(number)

    @tg.bundle()
    def quote(self, kg, base_fee):
        """The quote line: the weight in kg, and the price, base_fee plus $4.00 per kg."""
        return f"{kg:.2f} kg: ${base_fee + RATE * kg:.2f}"

    def forward(self, weight):
        return self.quote(self.to_kg(weight), self.base_fee)


def guide(example: tg.train.Example, output: object) -> tuple[float, str]:
    """Right when the quote line is; the feedback says which part is wrong."""
    want = _LINE.match(example.label)
    assert want is not None
    got = _LINE.match(output) if isinstance(output, str) else None
    if got is None:
        return 0.0, f"quote for {example.input!r} gave {output!r}; expected {example.label!r}"
    if output == example.label:
        return 1.0, f"quote for {example.input!r} is right: {output!r}"
    problems = []
    if got[1] != want[1]:
        problems.append(f"read the weight as {got[1]} kg, but {example.input} is {want[1]} kg")
    if got[2] != want[2]:
        prices = f"${BASE_FEE:.2f} per parcel + ${RATE:.2f} per kg"
        problems.append(f"charged ${got[2]}, expected ${want[2]} (the price list: {prices})")
    return 0.0, f"quote for {example.input!r} " + " and ".join(problems)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options."""
    parser.add_argument("--model", help="a litellm model name (default: $TRACEGRAD_MODEL, else the embedded model)")
    parser.add_argument("--steps", type=int, default=6, help="the most optimizer steps (default: 6)")
    parser.add_argument("--seed", type=int, default=0, help="the model's sampling seed (default: 0)")
    parser.add_argument("--out", default="out/demo", help="where the run, the picture and the report go")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def score(model: ShippingQuote) -> float:
    """The fraction of examples quoted right."""
    result = tg.train.evaluate(model, EXAMPLES, guide, progress=False, cache=None)
    return result.score


def run(args: argparse.Namespace, llm: tg.LLM | None = None) -> int:
    """Run the demo (with ``llm``, else a client of ``args.model``); 0 when the score
    did not get worse."""
    started = time.perf_counter()
    # sampled (reproducibly, from the seed) so that a rejected proposal is not proposed again
    llm = llm or tg.LLM(args.model, temperature=0.3, seed=args.seed)
    print(f"model: {llm.model}")
    out = Path(args.out)
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    model = ShippingQuote()
    before = score(model)
    print(f"score before: {before:.2f} ({round(before * len(EXAMPLES))}/{len(EXAMPLES)} quotes right)")
    optimizer = tg.OptoPrime(model, llm=llm, memory_size=3)
    history = tg.train(
        model,
        EXAMPLES,
        guide,
        optimizer,
        batch_size=len(EXAMPLES),
        shuffle=False,  # the same order every step: the model reuses the prompt's prefix
        epochs=args.steps,
        stop=tg.train.TargetScore(1.0) | tg.train.StopAfter(steps=args.steps),
        run_dir=run_dir,
        quiet=args.quiet,
        cache=False,
    )
    after = score(model)
    print(f"score after:  {after:.2f} ({round(after * len(EXAMPLES))}/{len(EXAMPLES)} quotes right)")
    print(f"steps: {len(history)}, {llm.usage.snapshot().summary()}, {time.perf_counter() - started:.0f} s")
    print("final parameters:")
    for name, param in model.named_parameters():
        print(f"  {name}: {param.kind.to_json(param.value)!r}")
    trace = model(tg.node(EXAMPLES[1].input, name="weight"))
    print(f"trace picture: {tg.render(trace, out / ('trace.svg' if shutil.which('dot') else 'trace.dot'))}")
    print(f"report: {tg.report(run_dir)}")
    return 0 if after >= before else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m tracegrad.demo``: the same as ``tracegrad demo``."""
    parser = argparse.ArgumentParser(prog="tracegrad demo", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
