"""Very long replies: parsed strictly, repaired only up to a bound, so a cut-off reply costs no time."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from tracegrad.llm.structured import REPAIR_MAX_CHARS, ParseFailure, extract_json, parse_structured


class Answer(BaseModel):
    text: str


def test_an_unterminated_reply_of_a_megabyte_is_refused_as_too_long_to_repair():
    reply = '{"text": "' + "x" * 1_000_000
    with pytest.raises(ParseFailure, match="too long to repair"):
        parse_structured(reply, Answer)


def test_a_long_reply_that_is_json_still_parses():
    long_text = "y" * (2 * REPAIR_MAX_CHARS)
    assert parse_structured(json.dumps({"text": long_text}), Answer).text == long_text
    fenced = f"Here it is:\n```json\n{json.dumps({'text': long_text})}\n```\nDone."
    assert extract_json(fenced) == {"text": long_text}


def test_a_reply_within_the_bound_is_still_repaired():
    reply = '{"text": "' + "z" * (REPAIR_MAX_CHARS - 100)
    assert parse_structured(reply, Answer).text == "z" * (REPAIR_MAX_CHARS - 100)


def test_a_cut_off_reply_is_shown_back_to_the_model(make_llm):
    llm, transport = make_llm(['{"text": "' + "x" * 1_000_000, '{"text": "fixed"}'], structured_mode="text")
    done = llm.complete("answer", schema=Answer, repairs=1)
    assert done.parsed == Answer(text="fixed") and len(transport.requests) == 2
    assert "too long to repair" in transport.requests[1].messages[-1]["content"]
