"""Hostile module checkpoints: each one is refused with one sentence, and the module keeps its values."""

from __future__ import annotations

import json

import pytest

import tracegrad as tg


class Agent(tg.Module):
    def __init__(self) -> None:
        self.prompt = tg.parameter("Answer briefly.", tg.Text())
        self.retries = tg.parameter(2, tg.Integer(0, 5))


def valid() -> dict:
    return {
        "format": "tracegrad.module",
        "version": 1,
        "module": "Agent",
        "parameters": {"prompt": "new", "retries": 3},
    }


def changed(**fields) -> bytes:
    return json.dumps({**valid(), **fields}).encode()


HOSTILE = {
    'version "1"': changed(version="1"),
    "version true": changed(version=True),
    "version 0": changed(version=0),
    "no version": json.dumps({k: v for k, v in valid().items() if k != "version"}).encode(),
    "a newer version": changed(version=2),
    "parameters null": changed(parameters=None),
    "parameters a list": changed(parameters=["new", 3]),
    "no parameters": json.dumps({k: v for k, v in valid().items() if k != "parameters"}).encode(),
    "extra a string": changed(extra="optimizer"),
    "module a number": changed(module=7),
    "a 5,000-digit integer": changed().replace(b'"retries": 3', b'"retries": ' + b"9" * 5000),
    "a 120-digit integer": changed().replace(b'"retries": 3', b'"retries": ' + b"9" * 120),
    "JSON nested 2,000 deep": changed().replace(b'"new"', b"[" * 2000 + b"]" * 2000),
    "invalid UTF-8": changed().replace(b'"new"', b'"\xff\xfe"'),
    "a text parameter that is a list": changed(parameters={"prompt": ["new"], "retries": 3}),
    "an integer parameter out of bounds": changed(parameters={"prompt": "new", "retries": 9}),
    "another format": changed(format="tracegrad.train"),
    "not an object": b'["tracegrad.module", 1]',
}


@pytest.mark.parametrize("content", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_checkpoint_is_refused_in_one_sentence_and_changes_nothing(tmp_path, content):
    agent = Agent()
    path = tmp_path / "agent.json"
    path.write_bytes(content)
    with pytest.raises(tg.TracegradError) as refused:
        agent.load(path)
    message = str(refused.value)
    assert message and "\n" not in message and len(message) < 400
    assert agent.state_dict() == {"prompt": "Answer briefly.", "retries": 2}


def test_the_valid_checkpoint_of_those_loads(tmp_path):
    path = tmp_path / "agent.json"
    path.write_bytes(changed())
    assert Agent().load(path).state_dict() == {"prompt": "new", "retries": 3}
