"""``tracegrad demo`` end to end with a scripted model: scores, picture and report."""

from __future__ import annotations

import argparse
import json
import os
import re

import pytest

import tracegrad as tg
from tracegrad.demo import EXAMPLES, ShippingQuote, add_arguments, guide, run
from tracegrad.llm.local import available, llama_available

FIXED = """def to_kg(self, weight):
    number, unit = weight.split()
    return float(number) * {"kg": 1.0, "g": 0.001, "lb": 0.45359237}[unit]
"""


def _args(tmp_path, *extra):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--out", str(tmp_path / "demo"), "--quiet", *extra])


def test_the_pipeline_starts_wrong_and_the_guide_says_why():
    model = ShippingQuote()
    example = EXAMPLES[1]
    score, feedback = guide(example, model(example.input).data)
    assert score == 0.0
    assert feedback == (
        "quote for '500 g' read the weight as 500.00 kg, but 500 g is 0.50 kg and charged $2005.00, "
        "expected $7.00 (the price list: $5.00 per parcel + $4.00 per kg)"
    )


def test_the_demo_improves_and_writes_the_picture_and_the_report(tmp_path, capsys):
    replies = [
        json.dumps({"reasoning": "the fee is too high", "suggestion": {"base_fee": 9.0}}),  # worse: rejected
        json.dumps({"reasoning": "units are ignored", "suggestion": {"to_kg.code": FIXED}}),
    ]
    llm = tg.LLM("stand-in/demo", transport=tg.ScriptedTransport(replies), cache=False)
    assert run(_args(tmp_path), llm=llm) == 0
    out = capsys.readouterr().out
    assert "score before: 0.50" in out and "score after:  1.00" in out
    report = tmp_path / "demo" / "run" / "report.html"
    assert f"report: {report}" in out and "<svg" in report.read_text()
    picture = next((tmp_path / "demo").glob("trace.*"))
    assert f"trace picture: {picture}" in out and picture.stat().st_size > 0


@pytest.mark.local_model
@pytest.mark.slow
def test_the_demo_improves_on_the_embedded_model(tmp_path, capsys):
    if not (llama_available() and available()) and not os.environ.get("TRACEGRAD_REQUIRE_LOCAL_MODEL"):
        pytest.skip("the embedded model is not installed (make local)")
    assert run(_args(tmp_path)) == 0
    out = capsys.readouterr().out
    before = float(re.search(r"score before: ([\d.]+)", out)[1])
    after = float(re.search(r"score after: +([\d.]+)", out)[1])
    assert after > before, out
