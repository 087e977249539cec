"""A missing or corrupt run directory gives one clear sentence, and no report is written."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_helpers import make_run

import tracegrad as tg
from tracegrad.visualize.report_data import read_run
from tracegrad.visualize.report_html import render_report


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def run_dir(pristine, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(pristine, copy)
    return copy


def checkpoint(run_dir) -> dict:
    return json.loads((run_dir / "checkpoint.json").read_text())


def set_checkpoint(run_dir, data) -> None:
    (run_dir / "checkpoint.json").write_text(json.dumps(data))


def deep(n: int) -> str:
    return "[" * n + "]" * n


CHECKPOINT_DAMAGE = {
    "bad JSON": (b'{"format": "tracegrad.train", ', "not valid JSON"),
    "invalid UTF-8": (b'{"format": "\xff\xfe"}', "not UTF-8"),
    "nested 2,000 deep": (('{"format": "tracegrad.train", "x": ' + deep(2000) + "}").encode(), "nested too deeply"),
    "a huge integer": (b'{"format": "tracegrad.train", "step": ' + b"9" * 5000 + b"}", "not valid JSON"),
    "not an object": (b"[1, 2]", "not a tracegrad training checkpoint"),
    "another format": (b'{"format": "tracegrad.module"}', "not a tracegrad training checkpoint"),
    "empty": (b"", "not valid JSON"),
}


@pytest.mark.parametrize("damage", CHECKPOINT_DAMAGE)
def test_a_corrupt_checkpoint_is_one_sentence(run_dir, damage):
    content, message = CHECKPOINT_DAMAGE[damage]
    (run_dir / "checkpoint.json").write_bytes(content)
    (run_dir / "report.html").unlink(missing_ok=True)
    with pytest.raises(tg.TracegradError, match=message) as info:
        tg.report(run_dir)
    assert "\n" not in str(info.value) and "checkpoint.json" in str(info.value)
    assert not (run_dir / "report.html").exists()


WRONG_TYPES = {
    "steps is a string": (lambda d: d["history"].__setitem__("steps", "many"), "history.steps"),
    "a score is a list": (lambda d: d["history"]["steps"][0].__setitem__("batch_score", [1]), "batch_score"),
    "the parameters are a list": (lambda d: d.__setitem__("parameters", [1, 2]), "parameters"),
    "no history": (lambda d: d.pop("history"), "history"),
    "versions hold numbers": (lambda d: d["history"].__setitem__("versions", {"v": 3}), "versions.v"),
    "a newer version": (lambda d: d.__setitem__("version", 99), "newer tracegrad"),
    "the log offset is text": (lambda d: d.__setitem__("log_offset", "far"), "log_offset"),
    "a step number of 4,000 digits": (lambda d: d["history"]["steps"][0].__setitem__("step", 10**4000), "steps.0.step"),
    "a score of 4,000 digits": (lambda d: d["history"]["steps"][0].__setitem__("batch_score", 10**4000), "batch_score"),
    "negative calls": (lambda d: d["history"]["steps"][0]["spend"].__setitem__("calls", -1), "spend.calls"),
}


@pytest.mark.parametrize("damage", WRONG_TYPES)
def test_a_checkpoint_with_wrong_types_names_the_field(run_dir, damage):
    change, field = WRONG_TYPES[damage]
    data = checkpoint(run_dir)
    change(data)
    set_checkpoint(run_dir, data)
    with pytest.raises(tg.TracegradError, match=field) as info:
        read_run(run_dir)
    assert "\n" not in str(info.value)


def test_a_corrupt_log_line_names_its_line(run_dir):
    log = run_dir / "log.jsonl"
    lines = log.read_bytes().split(b"\n")
    lines[1] = lines[1][: len(lines[1]) // 2]  # a proposal line cut in half
    log.write_bytes(b"\n".join(lines))
    with pytest.raises(tg.TracegradError, match=r"line 2 of the log .* not valid JSON"):
        read_run(run_dir)
    log.write_bytes(b'{"event": "proposal", "step": 1, "report": {"messages": "hi"}}\n')
    with pytest.raises(tg.TracegradError, match=r"line 1 of the log .*report.messages"):
        read_run(run_dir)
    log.write_bytes(b'{"event": "start"}\n\xff\n')
    with pytest.raises(tg.TracegradError, match=r"line 2 of the log .* not UTF-8"):
        read_run(run_dir)
    log.write_bytes(b"[1]\n")
    with pytest.raises(tg.TracegradError, match=r"line 1 of the log .* not a JSON object"):
        read_run(run_dir)


def test_what_a_killed_step_appended_after_the_checkpoint_is_not_read(run_dir):
    with (run_dir / "log.jsonl").open("ab") as fh:
        fh.write(b'{"event": "proposal", "step": 9, "report": {"reasoning": "lost')  # killed mid-line
    run = read_run(run_dir)
    assert len(run.steps) == 4 and all(p.report is not None for s in run.steps for p in s.proposals)


def test_a_run_without_a_log_is_read_without_reports(run_dir):
    (run_dir / "log.jsonl").unlink()
    run = read_run(run_dir)
    assert run.steps[0].proposals[0].report is None
    assert "holds no report" in tg.report(run_dir).read_text(encoding="utf-8")


def test_missing_places_are_named(tmp_path):
    with pytest.raises(tg.TracegradError, match="is not a directory"):
        tg.report(tmp_path / "nowhere")
    with pytest.raises(tg.TracegradError, match="not a tracegrad run directory"):
        tg.report(tmp_path)


def test_an_unwritable_target_is_one_sentence(run_dir):
    with pytest.raises(tg.TracegradError, match="cannot write the report"):
        tg.report(run_dir, run_dir)  # a directory


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def paths(value, prefix=()):
    """Every place inside a JSON value, as a tuple of keys and indices."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from paths(child, (*prefix, key))


def damage_somewhere(value, data):
    """A copy of the JSON ``value`` with one place inside it replaced by any JSON value."""
    place = data.draw(st.sampled_from([p for p in paths(value) if p]))
    damaged = json.loads(json.dumps(value))
    holder = damaged
    for key in place[:-1]:
        holder = holder[key]
    holder[place[-1]] = data.draw(JSON)
    return damaged


def fuzz_copy(pristine, tmp_path):
    run_dir = tmp_path / "fuzz"
    if not run_dir.exists():  # one copy for every example; the trace is not what is tested here
        shutil.copytree(pristine, run_dir, ignore=shutil.ignore_patterns("trace.json"))
    return run_dir


def read_or_refuse(run_dir):
    try:
        render_report(read_run(run_dir))
    except tg.TracegradError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_value_replaced_anywhere_in_the_checkpoint_is_read_or_refused_in_one_sentence(pristine, tmp_path, data):
    run_dir = fuzz_copy(pristine, tmp_path)
    set_checkpoint(run_dir, damage_somewhere(checkpoint(pristine), data))
    read_or_refuse(run_dir)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_value_replaced_anywhere_in_a_logged_proposal_is_read_or_refused_in_one_sentence(pristine, tmp_path, data):
    run_dir = fuzz_copy(pristine, tmp_path)
    lines = (pristine / "log.jsonl").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if '"event": "proposal"' in line)
    lines[at] = json.dumps(damage_somewhere(json.loads(lines[at]), data))
    (run_dir / "log.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    offset = len("\n".join(lines).encode()) + 1
    set_checkpoint(run_dir, {**checkpoint(pristine), "log_offset": offset})
    read_or_refuse(run_dir)
