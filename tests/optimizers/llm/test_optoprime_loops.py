"""Whole optimization loops with scripted models that read the prompt and propose."""

from __future__ import annotations

import ast
import json
import re

import tracegrad as tg
from tracegrad.optimizers.llm.optoprime import OptoPrime


def user_prompt(request) -> str:
    return request.messages[1]["content"]


def answer(reasoning, **suggestion):
    return json.dumps({"reasoning": reasoning, "answer": None, "suggestion": suggestion})


def test_number_is_tuned_from_text_feedback(make_llm):
    @tg.bundle
    def dose(weight, per_kg):
        """Dose in mg for a patient of `weight` kg."""
        return weight * per_kg

    def model(request):  # reads the variable, the output and the target, and corrects
        prompt = user_prompt(request)
        per_kg = float(re.search(r"^per_kg=([\d.e-]+)", prompt, re.M).group(1))
        got = float(re.search(r"^dose1=([\d.e-]+)", prompt, re.M).group(1))
        target = float(re.search(r"should be ([\d.]+) mg", prompt).group(1))
        return answer("scale per_kg by target/got", per_kg=per_kg * target / got)

    llm, _ = make_llm(model)
    per_kg = tg.parameter(2.0, tg.Number(0.1, 10), name="per_kg")
    opt = OptoPrime([per_kg], llm=llm)
    for _ in range(5):
        out = dose(tg.node(70.0, name="weight"), per_kg)
        if abs(out.data - 350.0) < 1e-6:
            break
        opt.zero_feedback()
        opt.backward(out, f"The dose is {out.data} mg but should be 350 mg.")
        opt.step()
    assert abs(per_kg.data - 5.0) < 1e-9


def test_buggy_code_is_fixed_from_failing_tests_after_a_rejected_try(make_llm):
    @tg.bundle(trainable=True)
    def clamp(value, low, high):
        """Limit value to [low, high]."""
        return max(low, value)

    fixed = "def clamp(value, low, high):\n    return min(high, max(low, value))\n"

    def model(request):
        prompt = user_prompt(request)
        if "does not parse" in request.messages[-1]["content"]:  # told about the syntax error
            return answer("fix the syntax", clamp_code=fixed)
        assert "```\ndef clamp(value, low, high):" in prompt  # the current code is shown
        if "expected 5" in prompt:
            return answer(
                "the upper bound is ignored", clamp_code="def clamp(value, low, high):\n    return min(high,\n"
            )
        return answer("all good")

    llm, _ = make_llm(model)
    opt = OptoPrime([clamp.parameter], llm=llm)
    cases = [((3, 0, 5), 3), ((9, 0, 5), 5), ((-2, 0, 5), 0)]
    reports = []
    for _ in range(3):
        opt.zero_feedback()
        failing = 0
        for args, expected in cases:
            out = clamp(*args)
            if out.data != expected:
                failing += 1
                opt.backward(out, f"clamp{args} returned {out.data}, expected {expected}")
        if not failing:
            break
        reports.append(opt.step())
    assert [clamp(*args).data for args, _ in cases] == [3, 5, 0]
    assert "does not parse" in reports[0].rejections[0].reason and reports[0].status == "updated"


def test_prompt_is_improved_against_labelled_examples(make_llm):
    @tg.bundle
    def respond(template, name):
        """A stand-in model: follows the template literally."""
        return template.format(name=name)

    def model(request):  # adds what the feedback says is missing
        prompt = user_prompt(request)
        template = ast.literal_eval(re.search(r"^template=(.*?)(?:  #.*)?$", prompt, re.M).group(1))
        missing = re.findall(r"missing '(.*?)'", prompt.split("#Feedback")[-1])
        return answer("add the missing words", template=template + " " + " ".join(dict.fromkeys(missing)))

    llm, _ = make_llm(model)
    template = tg.parameter("Hello {name}.", name="template")
    opt = OptoPrime([template], llm=llm)
    labelled = [("Ada", ["Hello Ada", "Welcome"]), ("Bob", ["Hello Bob", "Welcome", "enjoy"])]
    for _ in range(3):
        opt.zero_feedback()
        misses = 0
        for name, required in labelled:
            out = respond(template, name)
            gaps = [w for w in required if w not in out.data]
            misses += len(gaps)
            opt.backward(out, "; ".join(f"missing {w!r}" for w in gaps) or "good")
        if not misses:
            break
        opt.step()
    assert all(w in respond(template, n).data for n, req in labelled for w in req)
