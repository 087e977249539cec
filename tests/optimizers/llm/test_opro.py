"""OPRO: the same optimizer base, shown only values and their feedback."""

from __future__ import annotations

import json
import re

import tracegrad as tg
from tracegrad.optimizers.llm.opro import OPRO


def test_opro_learns_from_its_history_of_values_and_feedback(make_llm):
    @tg.bundle
    def loss(x):
        """Squared distance to a secret."""
        return (x - 7.25) ** 2

    def model(request):  # fits a parabola through the values and scores it is shown
        prompt = request.messages[1]["content"]
        assert "#Code" not in prompt  # OPRO shows no program
        seen = [(float(v), float(s)) for v, s in re.findall(r"x=([\d.e-]+)\nfeedback: loss ([\d.e-]+)", prompt)]
        current = float(re.search(r"^x=([\d.e-]+)", prompt.split("\n#Variables\n")[1], re.M).group(1))
        score = float(re.search(r"loss ([\d.e-]+)", prompt.split("\n#Feedback\n")[1]).group(1))
        points = list({v: s for v, s in [*seen, (current, score)]}.items())[-3:]
        if len(points) < 3:
            return json.dumps({"reasoning": "explore", "suggestion": {"x": current + 2}})
        (a, fa), (b, fb), (c, fc) = points
        top = (b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)
        bottom = (b - a) * (fb - fc) - (b - c) * (fb - fa)
        guess = b - 0.5 * top / bottom if bottom else current + 1
        return json.dumps(
            {"reasoning": "the vertex of the parabola through the last three", "suggestion": {"x": guess}}
        )

    llm, transport = make_llm(model)
    x = tg.parameter(0.0, tg.Number(-100, 100), name="x")
    opt = OPRO([x], llm=llm, memory_size=5)
    best = float("inf")
    for _ in range(6):
        out = loss(x)
        best = min(best, out.data)
        opt.zero_feedback()
        opt.backward(out, f"loss {out.data:.6g}")
        opt.step()
    assert best < 1e-6
    last = transport.requests[-1].messages[1]["content"]
    assert last.count("feedback: loss") == 5  # the history holds memory_size entries


def test_opro_rejects_invalid_values_like_optoprime(make_llm):
    k = tg.parameter(2, tg.Integer(1, 3), name="k")
    out = k * 2
    out.backward("bigger")
    script = [json.dumps({"suggestion": {"k": 9}}), json.dumps({"suggestion": {"k": 3}})]
    llm, transport = make_llm(script)
    report = OPRO([k], llm=llm).step()
    assert k.data == 3 and report.attempts == 2 and report.rejections[0].name == "k"
    assert "#Variables\nk=2  # integer in [1, 3]" in transport.requests[0].messages[1]["content"]
