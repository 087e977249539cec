"""Every loader of a file, fed hostile contents: only tracegrad's own errors, never a partial load.

Each loader gets a valid file of its kind, then variants of it: a value anywhere
replaced by another JSON value, a key removed, the text cut short, bytes flipped, and
the classic hostile documents (invalid UTF-8, NaN, huge integers, deep nesting). A load
either succeeds or raises ``TracegradError``; a failed one leaves the parameters and the
optimizer state exactly as they were.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracegrad as tg
from tracegrad.llm import LLM, ReplayTransport, ResponseCache, ScriptedTransport, TransportResponse
from tracegrad.train.run import RunDir

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.sampled_from([-1, 0, 2**64, 10**80, -(10**99)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
HOSTILE = [
    b"",
    b"null",
    b"[]",
    b'"a string"',
    b"\xff\xfe{}",
    b'{"format": "\xc3\x28"}',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": 1e400}',
    b'{"a": ' + b"9" * 5000 + b"}",
    b'{"a": ' + b"9" * 200 + b"}",
    b"[" * 2000 + b"]" * 2000,
    b"[" * 150 + b"]" * 150,
    b'{"a": 1',
]


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: the keys and indexes leading to it."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def hostile_data(draw, valid: Any) -> Any:
    """``valid`` JSON data with one value replaced by another JSON value, or removed."""
    data = copy.deepcopy(valid)
    where = draw(st.sampled_from(paths(data)[1:]))
    parent = data
    for step in where[:-1]:
        parent = parent[step]
    if draw(st.booleans()):
        del parent[where[-1]]
    else:
        parent[where[-1]] = draw(json_values | st.sampled_from([None, "1", [], {}, -1, 10**80]))
    return data


@st.composite
def hostile_bytes(draw, valid: Any) -> bytes:
    """A hostile variant of the JSON document ``valid``."""
    how = draw(st.sampled_from(["change", "change", "cut", "flip", "classic"]))
    text = json.dumps(valid, indent=2).encode()
    if how == "classic":
        return draw(st.sampled_from(HOSTILE))
    if how == "cut":
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "flip":
        damaged = bytearray(text)
        for _ in range(draw(st.integers(1, 4))):
            damaged[draw(st.integers(0, len(text) - 1))] = draw(st.integers(0, 255))
        return bytes(damaged)
    return json.dumps(draw(hostile_data(valid))).encode()


def fresh(tmp_path: Path) -> Path:
    """A new directory for one example (hypothesis runs many in one test's tmp_path)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


def attempt(load, state, path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` and load it: it loads, or raises TracegradError and
    ``state()`` is what it was."""
    path.write_bytes(content)
    before = state()
    try:
        load(path)
    except tg.TracegradError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), f"not one sentence: {exc}"
        assert state() == before


# -- modules and LLM optimizers ---------------------------------------------------------------


class Agent(tg.Module):
    def __init__(self) -> None:
        self.prompt = tg.parameter("Answer briefly.", tg.Text(max_length=200))
        self.temperature = tg.parameter(0.5, tg.Number(0, 2))
        self.retries = tg.parameter(2, tg.Integer(0, 5))
        self.style = tg.parameter("plain", tg.Choice(("plain", "formal")))
        self.config = tg.parameter({"k": 3, "tags": ["a"]}, tg.Structure())


def module_state(module: tg.Module) -> str:
    return json.dumps(module.state_dict(), sort_keys=True)


@FUZZ
@given(data=st.data())
def test_a_module_checkpoint_loads_whole_or_not_at_all(tmp_path, data):
    tmp_path = fresh(tmp_path)
    agent = Agent()
    agent.save(tmp_path / "valid.json")
    valid = json.loads((tmp_path / "valid.json").read_text())
    content = data.draw(hostile_bytes(valid))
    attempt(agent.load, lambda: module_state(agent), tmp_path / "agent.json", content)


def llm_optimizer(kind: str, params: Any) -> Any:
    llm = LLM("test/model", transport=ScriptedTransport([]), cache=False)
    return {"OptoPrime": tg.OptoPrime, "OPRO": tg.OPRO, "OptoPrimeMulti": tg.OptoPrimeMulti}[kind](
        params, llm=llm, memory_size=2
    )


def remembered(opt: Any) -> Any:
    """``opt`` with two steps and two memory entries in its state."""
    state = opt.state_dict()
    names = sorted(opt.names)
    state["step_count"] = 2
    state["memory"] = [{"values": {n: "v" for n in names}, "feedback": f"try {i}"} for i in range(2)]
    opt.load_state_dict(state)
    return opt


def both_states(module: tg.Module, opt: Any) -> str:
    return module_state(module) + json.dumps(opt.state_dict(), sort_keys=True, default=repr) + str(opt.step_count)


@FUZZ
@pytest.mark.parametrize("kind", ["OptoPrime", "OPRO", "OptoPrimeMulti"])
@given(data=st.data())
def test_an_llm_optimizer_checkpoint_loads_whole_or_not_at_all(tmp_path, kind, data):
    tmp_path = fresh(tmp_path)
    agent = Agent()
    opt = remembered(llm_optimizer(kind, agent))
    opt.save(tmp_path / "valid.json", agent)
    valid = json.loads((tmp_path / "valid.json").read_text())
    content = data.draw(hostile_bytes(valid))
    attempt(lambda p: opt.load(p, agent), lambda: both_states(agent, opt), tmp_path / "opt.json", content)


@FUZZ
@given(data=st.data())
def test_an_optimizer_state_dict_is_checked_before_anything_changes(data):
    opt = remembered(llm_optimizer("OptoPrime", [tg.parameter("a", name="a"), tg.parameter(1.0, name="b")]))
    valid = opt.state_dict()
    hostile = data.draw(hostile_data(valid))
    before = json.dumps(opt.state_dict(), sort_keys=True)
    try:
        opt.load_state_dict(hostile)
    except tg.TracegradError:
        assert json.dumps(opt.state_dict(), sort_keys=True) == before


# -- JAX and Hybrid ---------------------------------------------------------------------------------


@pytest.mark.slow
@FUZZ
@pytest.mark.parametrize("kind", ["JaxOptimizer", "Hybrid"])
@given(data=st.data())
def test_a_jax_or_hybrid_checkpoint_loads_whole_or_not_at_all(tmp_path, kind, data):
    tmp_path = fresh(tmp_path)
    jnp = pytest.importorskip("jax.numpy")
    optax = pytest.importorskip("optax")
    from tracegrad.optimizers.jax import JaxOptimizer

    class Model(tg.Module):
        def __init__(self) -> None:
            self.w = tg.node(jnp.array([0.5, -0.5]), trainable=True)
            self.prompt = tg.parameter("scale", tg.Text())

    model = Model()
    jax_opt = JaxOptimizer([model.w], optax.adam(0.1))
    opt = (
        jax_opt
        if kind == "JaxOptimizer"
        else tg.Hybrid(llm=remembered(llm_optimizer("OptoPrime", [model.prompt])), jax=jax_opt)
    )
    opt.save(tmp_path / "valid.json", model)
    valid = json.loads((tmp_path / "valid.json").read_text())
    content = data.draw(hostile_bytes(valid))

    def state() -> str:
        values = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in model.state_dict().items()}
        return json.dumps(values, sort_keys=True, default=repr) + json.dumps(opt.state_dict(), sort_keys=True)

    attempt(lambda p: opt.load(p, model), state, tmp_path / "opt.json", content)


# -- run directories -------------------------------------------------------------------------------


def valid_run_checkpoint() -> dict[str, Any]:
    import random

    rng = random.Random(3).getstate()
    return {
        "step": 2,
        "position": {"epoch": 1, "batch": 0},
        "config": {"batch_size": 2, "seed": 0},
        "parameters": {"prompt": "Answer briefly."},
        "optimizer": {"type": "OptoPrime", "step_count": 2, "memory": []},
        "pool": {"current": 0, "next": 1, "candidates": []},
        "rng": [rng[0], list(rng[1]), rng[2]],
        "history": {"steps": []},
    }


@FUZZ
@given(data=st.data())
def test_a_run_directory_checkpoint_is_read_whole_or_refused(tmp_path, data):
    tmp_path = fresh(tmp_path)
    run = RunDir(tmp_path / "run")
    run.write(valid_run_checkpoint(), [["key", {"score": 1.0}]])
    run.close()
    valid = json.loads(run.checkpoint_path.read_text())
    run.checkpoint_path.write_bytes(data.draw(hostile_bytes(valid)))
    try:
        checkpoint = run.read()
    except tg.TracegradError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(run.rewind(checkpoint), list)


@FUZZ
@given(lines=st.lists(st.sampled_from(HOSTILE) | json_values.map(lambda v: json.dumps(v).encode()), max_size=4))
def test_a_run_directory_cache_file_is_read_whole_or_refused(tmp_path, lines):
    tmp_path = fresh(tmp_path)
    run = RunDir(tmp_path / "run")
    run.write(valid_run_checkpoint(), [["key", {"score": 1.0}]])
    run.close()
    with run.cache.path.open("ab") as fh:
        fh.write(b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines))
    checkpoint = run.read()
    checkpoint["cache_offset"] = run.cache.path.stat().st_size
    try:
        entries = run.rewind(checkpoint)
    except tg.TracegradError:
        return
    assert all(isinstance(k, str) and isinstance(v, dict) for k, v in entries)


# -- the LLM cache and replay files -----------------------------------------------------------------


@FUZZ
@given(
    stored=st.binary(max_size=60)
    | json_values.map(json.dumps)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
)
def test_any_cache_row_is_a_response_or_a_miss(tmp_path, stored):
    tmp_path = fresh(tmp_path)
    cache = ResponseCache(tmp_path / "cache")
    llm = LLM("m", transport=ScriptedTransport(lambda r: "from the model"), cache=cache, temperature=0)
    cache.put(llm.request("q"), TransportResponse(text="placeholder"))
    with sqlite3.connect(cache.path) as conn:
        conn.execute("UPDATE responses SET response = ?", (stored,))
    done = llm.complete("q")
    assert isinstance(done.text, str) and done.usage.prompt_tokens >= 0


@FUZZ
@given(data=st.data())
def test_a_replay_file_loads_whole_or_is_refused(tmp_path, data):
    tmp_path = fresh(tmp_path)
    path = tmp_path / "replay.jsonl"
    recorder = ReplayTransport(path, record_from=ScriptedTransport(["one", "two"]))
    llm = LLM("m", transport=recorder, cache=False)
    llm.complete("first")
    llm.complete("second")
    lines = path.read_bytes().splitlines()
    n = data.draw(st.integers(0, len(lines) - 1))
    lines[n] = data.draw(hostile_bytes(json.loads(lines[n]))).replace(b"\n", b" ")
    path.write_bytes(b"\n".join(lines) + b"\n")
    try:
        replay = ReplayTransport(path)
    except tg.TracegradError as exc:
        assert f":{n + 1} " in str(exc)
        return
    for response in replay._entries.values():
        assert isinstance(response.text, str) and isinstance(response.raw, dict)
