"""tg.Module / @tg.model: finding parameters, state dicts, atomic save and load."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracegrad as tg


@tg.bundle(trainable=True)
def shared_tool(x):
    """A trainable free function held by modules."""
    return x + 1


class Planner(tg.Module):
    def __init__(self):
        self.prompt = tg.node("Plan the steps.", trainable=True)
        self.depth = tg.node(3, trainable=True, kind=tg.Integer(1, 10))


@tg.model
class Agent:
    def __init__(self):
        self.planner = Planner()
        self.temperature = tg.node(0.7, trainable=True, kind=tg.Number(0, 2))
        self.tools = [tg.node("search", trainable=True), tg.node("calc", trainable=True)]
        self.options = {"mode": tg.node("fast", trainable=True, kind=tg.Choice(("fast", "slow")))}
        self.schema = tg.node({"keys": ["a"]}, trainable=True)
        self.constant = tg.node("not trainable")
        self.tool = shared_tool
        self.label = "plain attribute"

    @tg.bundle(trainable=True)
    def solve(self, x):
        """Solve a problem."""
        return x * 2

    def forward(self, x):
        return self.solve(x)


EXPECTED_PATHS = [
    "planner.prompt",
    "planner.depth",
    "temperature",
    "tools.0",
    "tools.1",
    "options.mode",
    "schema",
    "tool.code",
    "solve.code",
]


def test_model_decorator_makes_a_module():
    agent = Agent()
    assert isinstance(agent, tg.Module)
    assert Agent.__name__ == "Agent"
    assert agent(4).data == 8  # Module.__call__ runs forward


def test_named_parameters_walks_attributes_lists_dicts_modules_and_code():
    agent = Agent()
    named = dict(agent.named_parameters())
    assert list(named) == EXPECTED_PATHS
    assert named["planner.prompt"] is agent.planner.prompt
    assert named["tools.1"] is agent.tools[1]
    assert named["options.mode"] is agent.options["mode"]
    assert named["solve.code"] is agent.solve.parameter
    assert named["tool.code"] is shared_tool.parameter
    assert [id(p) for p in agent.parameters()] == [id(p) for p in named.values()]
    assert all(isinstance(p, tg.ParameterNode) for p in agent.parameters())


def test_each_instance_has_its_own_method_code():
    a, b = Agent(), Agent()
    assert dict(a.named_parameters())["solve.code"] is not dict(b.named_parameters())["solve.code"]


def test_parameter_shared_twice_is_listed_once():
    class M(tg.Module):
        def __init__(self):
            self.p = tg.node("x", trainable=True)
            self.again = [self.p]
            self.me = self  # a cycle

    m = M()
    assert list(dict(m.named_parameters())) == ["p"]


def test_a_parameter_in_a_module_is_named_by_its_path():
    agent = Agent()
    assert agent.temperature.name == "temperature"
    assert agent.planner.prompt.name == "planner.prompt"
    assert agent.tools[1].name == "tools.1"
    assert agent.options["mode"].name == "options.mode"
    assert agent.solve.parameter.name == "solve.code"
    named = tg.node("x", trainable=True, name="given")
    agent.extra = named
    assert named.name == "extra"  # inside a module, the path is the name
    assert [p.name for p in agent.parameters()] == [path for path, _ in agent.named_parameters()]


def test_a_sub_module_keeps_its_enclosing_path():
    agent = Agent()
    assert dict(agent.planner.named_parameters())["prompt"] is agent.planner.prompt
    assert agent.planner.prompt.name == "planner.prompt"  # not shortened by the inner walk


def test_two_instances_of_one_class_get_distinct_names():
    class Pair(tg.Module):
        def __init__(self):
            self.first = Planner()
            self.second = Planner()

    pair = Pair()
    assert [p.name for p in pair.parameters()] == ["first.prompt", "first.depth", "second.prompt", "second.depth"]


def test_parameters_appended_later_are_named_when_found():
    class Holder(tg.Module):
        def __init__(self):
            self.items = []

    holder = Holder()
    p = tg.node("x", trainable=True)
    holder.items.append(p)
    assert list(dict(holder.named_parameters())) == ["items.0"] and p.name == "items.0"


def test_parameters_inside_a_dataclass_attribute_are_found():
    import dataclasses

    @dataclasses.dataclass
    class Settings:
        prompt: object
        retries: int = 2

    class Holder(tg.Module):
        def __init__(self):
            self.settings = Settings(tg.node("Be brief.", trainable=True))

    assert list(dict(Holder().named_parameters())) == ["settings.prompt"]


def test_subclass_of_module_with_forward_missing():
    with pytest.raises(TypeError):
        tg.Module()()


# -- state dicts -------------------------------------------------------------------------------


def test_state_dict_is_json_data_by_path():
    agent = Agent()
    state = agent.state_dict()
    assert list(state) == EXPECTED_PATHS
    assert state["planner.prompt"] == "Plan the steps."
    assert state["temperature"] == 0.7
    assert state["options.mode"] == "fast"
    assert "def solve(self, x):" in state["solve.code"]
    assert json.loads(json.dumps(state)) == state


def test_load_state_dict_round_trip():
    src = Agent()
    src.planner.prompt.data = "Think first."
    src.temperature.data = 1.5
    src.tools[0].data = "browse"
    src.options["mode"].data = "slow"
    src.schema.data = {"keys": ["b", "c"]}
    src.solve.parameter.data = "def solve(self, x):\n    return x * 3\n"
    dst = Agent()
    dst.load_state_dict(json.loads(json.dumps(src.state_dict())))
    assert dst.state_dict() == src.state_dict()
    assert dst.solve(2).data == 6


def test_load_state_dict_strict_reports_missing_and_unexpected_keys():
    agent = Agent()
    before = agent.state_dict()
    state = dict(before)
    state["temperature"] = 1.0
    del state["schema"]
    with pytest.raises(tg.TracegradError, match="schema"):
        agent.load_state_dict(state)
    assert agent.state_dict() == before
    state = {**before, "temperature": 1.0, "nonexistent": 1}
    with pytest.raises(tg.TracegradError, match="nonexistent"):
        agent.load_state_dict(state)
    assert agent.state_dict() == before


def test_load_state_dict_not_strict_loads_what_matches():
    agent = Agent()
    agent.load_state_dict({"temperature": 1.25, "unknown": 3}, strict=False)
    assert agent.temperature.data == 1.25


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("temperature", 5.0),
        ("planner.depth", 0),
        ("options.mode", "medium"),
        ("tools.1", 3),
        ("solve.code", "def solve(x):\n    return x\n"),
        ("solve.code", "def solve(self, x) return"),
    ],
)
def test_any_invalid_value_means_nothing_is_assigned(path, bad):
    agent = Agent()
    state = agent.state_dict()
    before = dict(state)
    new = {**state, "planner.prompt": "changed", "tools.0": "changed", "temperature": 1.0}  # valid changes
    new[path] = bad
    with pytest.raises(tg.InvalidValueError) as info:
        agent.load_state_dict(new)
    assert path in str(info.value)
    assert agent.state_dict() == before


@settings(max_examples=60, deadline=None)
@given(text=st.text())
def test_state_dict_round_trips_arbitrary_text(text):
    src, dst = Planner(), Planner()
    src.prompt.data = text
    dst.load_state_dict(json.loads(json.dumps(src.state_dict())))
    assert dst.prompt.data == text


# -- save / load ----------------------------------------------------------------------------------


def test_save_and_load_into_a_fresh_model(tmp_path):
    src = Agent()
    src.planner.prompt.data = "Plan carefully."
    src.planner.depth.data = 7
    src.temperature.data = 0.1
    src.tools[1].data = "python"
    src.options["mode"].data = "slow"
    src.schema.data = {"keys": [], "n": None}
    src.solve.parameter.data = "def solve(self, x):\n    return x - 1  # restored\n"
    path = tmp_path / "ckpt" / "agent.json"
    src.save(path, extra={"optimizer": {"step": 3}})
    assert path.exists()
    assert os.listdir(path.parent) == ["agent.json"]  # no temporary file left behind
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["parameters"] == src.state_dict()

    fresh = Agent()
    assert fresh.load(path) is fresh
    assert fresh.state_dict() == src.state_dict()
    assert fresh.solve.parameter.data.endswith("# restored\n")
    assert fresh.solve(10).data == 9  # the restored code runs
    assert fresh.temperature.data == 0.1
    assert tg.read_checkpoint(path)["extra"] == {"optimizer": {"step": 3}}


def test_save_overwrites_atomically(tmp_path):
    agent = Planner()
    path = tmp_path / "p.json"
    agent.save(path)
    agent.prompt.data = "second"
    agent.save(path)
    assert sorted(os.listdir(tmp_path)) == ["p.json"]
    assert Planner().load(path).prompt.data == "second"


def test_failed_save_leaves_the_previous_file_intact(tmp_path):
    agent = Planner()
    path = tmp_path / "p.json"
    agent.save(path)
    original = path.read_bytes()
    with pytest.raises(ValueError):
        agent.save(path, extra={"loss": math.nan})  # NaN is not JSON
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["p.json"]


def test_parameter_holding_nan_fails_to_save_and_keeps_the_previous_file(tmp_path):
    class Loose(tg.Module):
        def __init__(self):
            self.value = tg.node(1.0, trainable=True, kind=tg.Kind())  # accepts anything

    m = Loose()
    path = tmp_path / "m.json"
    m.save(path)
    original = path.read_bytes()
    m.value.data = math.nan
    with pytest.raises(ValueError):
        m.save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.json"]


def test_crash_while_writing_leaves_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    agent = Planner()
    path = tmp_path / "p.json"
    agent.save(path)
    original = path.read_bytes()
    agent.prompt.data = "new"

    def failing_replace(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        agent.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["p.json"]


def test_load_rejects_files_that_are_not_checkpoints(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"hello": 1}), encoding="utf-8")
    with pytest.raises(tg.TracegradError):
        Planner().load(path)
    newer = tmp_path / "newer.json"
    Planner().save(newer)
    payload = json.loads(newer.read_text(encoding="utf-8"))
    payload["version"] = 10**6
    newer.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(tg.TracegradError):
        Planner().load(newer)


def test_load_of_a_mismatching_checkpoint_changes_nothing(tmp_path):
    path = tmp_path / "planner.json"
    Planner().save(path)
    agent = Agent()
    before = agent.state_dict()
    with pytest.raises(tg.TracegradError):
        agent.load(path)
    assert agent.state_dict() == before


@settings(max_examples=40, deadline=None)
@given(text=st.text())
def test_save_and_load_round_trip_arbitrary_text(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.json"
        src = Planner()
        src.prompt.data = text
        src.save(path)
        assert Planner().load(path).prompt.data == text


def test_save_and_load_text_with_a_lone_surrogate(tmp_path):
    src = Planner()
    src.prompt.data = "bad \ud800 char"
    src.save(tmp_path / "p.json")
    assert Planner().load(tmp_path / "p.json").prompt.data == "bad \ud800 char"


def test_choice_of_tuples_round_trips_through_json():
    class M(tg.Module):
        def __init__(self):
            self.size = tg.node((1, 2), trainable=True, kind=tg.Choice(((1, 2), (3, 4))))

    src, dst = M(), M()
    src.size.data = (3, 4)
    dst.load_state_dict(json.loads(json.dumps(src.state_dict())))
    assert dst.size.data == (3, 4)


def test_subclass_overriding_a_trainable_method_with_a_plain_one():
    class Base(tg.Module):
        def __init__(self):
            self.prompt = tg.node("p", trainable=True)

        @tg.bundle(trainable=True)
        def solve(self, x):
            return x

    class Child(Base):
        def solve(self, x):
            return 0

    assert list(dict(Child().named_parameters())) == ["prompt"]


def test_subclass_overriding_a_trainable_method_with_a_non_trainable_bundle():
    class Base(tg.Module):
        @tg.bundle(trainable=True)
        def solve(self, x):
            return x

    class Child(Base):
        @tg.bundle()
        def solve(self, x):
            return 0

    assert list(dict(Child().named_parameters())) == []


def test_checkpoint_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    class Small(tg.Module):
        def __init__(self):
            self.x = tg.node(1.0, trainable=True)

    path = tmp_path / "small.json"
    Small().save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
