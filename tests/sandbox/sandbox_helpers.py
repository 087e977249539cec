"""Sandbox test helpers: an optimization episode whose scripted model proposes hostile
code, and a snapshot of what the test process must still be after it."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import tracegrad as tg
from tracegrad.optimizers.llm.optoprime import OptoPrime

GOOD = "def solve(x):\n    return x + 1\n"
#: Short limits, so that a hung call costs the suite about a second.
SHORT = {"timeout": 1.0, "cpu": 1.0}


def answer(reasoning: str, **suggestion: object) -> str:
    return json.dumps({"reasoning": reasoning, "answer": None, "suggestion": suggestion})


class Proposer:
    """A scripted model: proposes the given versions of ``solve`` in turn, and keeps the
    prompts it was shown."""

    def __init__(self, *codes: str) -> None:
        self.codes = list(codes)
        self.prompts: list[str] = []

    def __call__(self, request: object) -> str:
        self.prompts.append(request.messages[1]["content"])  # type: ignore[attr-defined]
        return answer("try this version", solve_code=self.codes.pop(0))


def make_solve() -> tg.Bundle:
    @tg.bundle(trainable=True)
    def solve(x):
        """Add one to x."""
        return x + 1

    return solve


class Episode:
    """A real optimizer step makes ``hostile`` the code of ``solve``; ``call()`` runs it
    in the sandbox; ``recover()`` gives the outcome as feedback, and the next step's
    correct version must then work: the run goes on."""

    def __init__(self, make_llm, hostile: str) -> None:
        self.model = Proposer(hostile, GOOD)
        llm, _ = make_llm(self.model)
        self.solve = make_solve()
        self.opt = OptoPrime([self.solve.parameter], llm=llm)
        out = self.solve(tg.node(1, name="x"))  # the user's own code, in-process
        assert out.data == 2
        self.step(out, "Return the same value, computed another way.")
        assert hostile.split("\n", 1)[1] in self.solve.parameter.data  # its body (the docstring may be kept)
        self.elapsed = 0.0

    def step(self, node: tg.Node, feedback: str) -> None:
        self.opt.zero_feedback()
        self.opt.backward(node, feedback)
        self.opt.step()

    def call(self, **limits: float) -> tuple[tg.Node, tg.ExecutionError | None]:
        """Call ``solve`` sandboxed: its output node, or the error node and the error."""
        with tg.sandboxing(**{**SHORT, **limits}):
            start = time.monotonic()
            try:
                out, error = self.solve(tg.node(1, name="x")), None
            except tg.ExecutionError as exc:
                out, error = exc.node, exc
            self.elapsed = time.monotonic() - start
        return out, error

    def failure(self, **limits: float) -> tg.ExecutionError:
        """The error the sandboxed call ends with (it must end with one)."""
        out, error = self.call(**limits)
        assert error is not None, f"the call returned {out.data!r}"
        assert out.parents and self.solve.parameter in out.parents  # an error node that reaches the code
        return error

    def recover(self, node: tg.Node, shown: str) -> None:
        """Give ``node`` as feedback; the model must be shown ``shown``; its next version works."""
        self.step(node, "This version failed; fix it.")
        assert shown in self.model.prompts[-1]
        assert self.solve(tg.node(1, name="x")).data == 2


class Snapshot:
    """What a hostile call must not change in the test process."""

    def __init__(self, *folders: Path) -> None:
        self.threads = {t.ident for t in threading.enumerate()}
        self.environment = dict(os.environ)
        self.classes = _tracegrad_classes()
        self.folders = folders
        self.files = _files(folders)
        self.children = _children()

    def assert_unchanged(self) -> None:
        threads = {t.ident for t in threading.enumerate()} ^ self.threads
        assert not threads, f"threads started or ended: {threads}"
        now = dict(os.environ)
        changed = {k for k in set(now) | set(self.environment) if now.get(k) != self.environment.get(k)}
        changed.discard("PYTEST_CURRENT_TEST")  # pytest's own, set at each stage of a test
        assert not changed, f"environment variables changed: {changed}"
        classes = _tracegrad_classes()
        changed = {name for name in set(classes) | set(self.classes) if classes.get(name) != self.classes.get(name)}
        assert not changed, f"tracegrad classes changed: {changed}"
        files = _files(self.folders) ^ self.files
        assert not files, f"files made or removed: {files}"
        children = _children() - self.children - _worker_pids()
        assert not children, f"processes left: {children}"


def _tracegrad_classes() -> dict[str, dict[str, int]]:
    found = {}
    for name in tg.__all__:
        value = getattr(tg, name)
        if isinstance(value, type):
            members = vars(value).items()  # but __slotnames__, which pickling a class adds to it
            found[name] = {attr: id(member) for attr, member in members if attr != "__slotnames__"}
    return found


def _files(folders: tuple[Path, ...]) -> set[str]:
    return {str(p) for folder in folders for p in folder.rglob("*")}


def _children() -> set[int]:
    me = os.getpid()
    with open(f"/proc/{me}/task/{me}/children", encoding="ascii") as listing:
        return {int(pid) for pid in listing.read().split()}


def _worker_pids() -> set[int]:
    from tracegrad.sandbox import worker

    return {w.pid for w in worker._workers.values()}


def call_processes() -> set[int]:
    """The processes of sandboxed calls still alive: those working in a directory of the
    sandbox's worker (a spare has none until it is given a call)."""
    from tracegrad.sandbox import worker

    base = worker.worker(False).base
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(base):
                    found.add(int(entry))
            except OSError:  # gone meanwhile
                pass
    return found


def wait_until(condition, seconds: float = 3.0) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (polled)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
