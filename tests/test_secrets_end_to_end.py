"""A credential planted in every way a user can pass one appears in no file, repr, report, log or error.

A full training run with a response cache, a replay file, a run directory (checkpoint,
log, evaluation cache), an optimizer checkpoint and an HTML report, on a scripted model
that fails once with an error quoting what it was sent; then every file under the
test's directory, every captured log record, every repr and report, every prompt and
the text of a failed call's error are searched for the planted credentials.
"""

from __future__ import annotations

import json
import logging
import re
import traceback

import pytest

import tracegrad as tg
from tracegrad.llm import LLM, LLMCallError, ReplayTransport, ResponseCache, RetryPolicy, ScriptedTransport
from tracegrad.train import ExactMatch, Trainer

API_KEY = "sk-planted-api-key-1111"
BEARER = "planted-bearer-token-2222"
AWS = "planted-aws-secret-3333"
PASSWORD = "planted-url-password-4444"
ENV_KEY = "sk-planted-env-key-5555"
SECRETS = (API_KEY, BEARER, AWS, PASSWORD, ENV_KEY)


@tg.bundle
def decorate(text, suffix):
    """Append the suffix to the text."""
    return text + suffix


class Suffixer(tg.Module):
    def __init__(self) -> None:
        self.suffix = tg.parameter("", tg.Text(max_length=20), description="appended to every input")

    def forward(self, text):
        return decorate(text, self.suffix)


class Provider:
    """A scripted provider: fails once quoting every credential it got, then suggests '!'."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, request):
        if not self.failed:
            self.failed = True
            headers = request.params["extra_headers"]
            return ConnectionError(
                f"401 from {request.api_base}: key {request.api_key}, {headers['Authorization']}, "
                f"aws {request.params['aws_secret_access_key']}, env {ENV_KEY}"
            )
        return json.dumps({"reasoning": "the outputs lack the '!'", "answer": None, "suggestion": {"suffix": "!"}})


def planted_llm(tmp_path, transport) -> LLM:
    return LLM(
        "test/optimizer",
        transport=transport,
        api_key=API_KEY,
        api_base=f"https://alice:{PASSWORD}@llm.example.com/v1",
        extra={"extra_headers": {"Authorization": f"Bearer {BEARER}"}, "aws_secret_access_key": AWS},
        cache=ResponseCache(tmp_path / "llm-cache"),
        temperature=0,
        retry=RetryPolicy(max_retries=2, initial_wait=0.0, jitter=0.0, sleep=lambda _s: None),
    )


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def finished_run(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    provider = ScriptedTransport(Provider())
    replay = ReplayTransport(tmp_path / "replay.jsonl", record_from=provider)
    llm = planted_llm(tmp_path, replay)
    model = Suffixer()
    opt = tg.OptoPrime(model, llm=llm)
    data = [(w, w + "!") for w in ["ab", "cd", "ef", "gh"]]
    with caplog.at_level(logging.DEBUG, logger="tracegrad"):
        history = Trainer(model, ExactMatch(), opt, batch_size=2, epochs=1, run_dir=tmp_path / "run", quiet=True).fit(
            data
        )
        opt.save(tmp_path / "checkpoint.json", model)
        report = tg.report(tmp_path / "run")
    return {"llm": llm, "opt": opt, "model": model, "history": history, "provider": provider, "report": report}


def test_the_run_used_every_credential_and_learnt(finished_run):
    sent = finished_run["provider"].requests[-1]
    assert sent.api_key == API_KEY and PASSWORD in sent.api_base and sent.params["aws_secret_access_key"] == AWS
    assert finished_run["model"].suffix.value == "!"
    assert finished_run["report"].exists()


def test_no_written_file_holds_a_credential(finished_run, tmp_path):
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"replay.jsonl", "llm.sqlite", "checkpoint.json", "log.jsonl", "parameters.json"} <= names
    for path in files:
        found = leaks(path.read_bytes().decode("utf-8", "replace"))
        assert not found, f"{path.relative_to(tmp_path)} holds {found}"


def test_no_log_record_holds_a_credential(finished_run, caplog):
    messages = [r.getMessage() for r in caplog.get_records("setup")]
    assert any("retrying" in m for m in messages)  # the provider's failure was logged, scrubbed
    for message in messages:
        assert not leaks(message), message


def test_no_repr_report_or_prompt_holds_a_credential(finished_run):
    opt, llm, history = finished_run["opt"], finished_run["llm"], finished_run["history"]
    shown = [repr(llm), str(llm), repr(opt), repr(llm.cache), repr(history), json.dumps(history.to_json())]
    shown += [json.dumps(opt.state_dict()), repr(finished_run["model"])]
    for request in finished_run["provider"].requests:
        shown += [repr(request), json.dumps(request.messages)]
    for step in history.steps:
        shown += [repr(step), json.dumps(step.to_json(), default=repr)]
    for text in shown:
        assert not leaks(text), text


def test_the_text_of_a_failed_call_holds_no_credential(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    llm = planted_llm(tmp_path, ScriptedTransport([PermissionError(f"refused {API_KEY} {BEARER} {AWS} {ENV_KEY}")]))
    with pytest.raises(LLMCallError) as failed:
        llm.complete("hello", cache=False)
    text = "".join(traceback.format_exception(failed.value))
    assert re.search("refused", text) and not leaks(text), text
