"""A Battleship agent whose reasoning and targeting code are trained from hits and misses.

The agent is a ``tg.Module`` with two trainable methods: ``reason(map)`` analyzes the
map of shots so far (``X`` a hit, ``O`` a miss, ``.`` unknown) and ``select_coordinate(map,
plan)`` picks the next ``(row, col)`` to fire at. Both start as ``return None``. Each
round the agent fires once on a hidden board; the environment's answer -- a hit, a miss
or an invalid shot -- is the feedback, a crash of the agent's code gives its error node,
and OptoPrime rewrites both methods. After each round the agent is evaluated on fixed
boards (hits per shot, not traced), so the printed score shows what it learned.

    python examples/battleship.py                      # the embedded model if installed, else an offline stand-in
    python examples/battleship.py --model openai/gpt-4o-mini   # or set TRACEGRAD_MODEL
"""

from __future__ import annotations

import argparse
import json
import random
import re

import tracegrad as tg

SHIPS = {"battleship": 4, "cruiser": 3, "submarine": 3, "destroyer": 2}


class Board:
    """A hidden square board with ships placed at random (seeded); shots are recorded."""

    def __init__(self, size: int = 6, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.size = size
        self.ships: set[tuple[int, int]] = set()
        for length in SHIPS.values():
            while True:
                vertical = rng.random() < 0.5
                row = rng.randrange(size - (length - 1 if vertical else 0))
                col = rng.randrange(size - (0 if vertical else length - 1))
                cells = {(row + i, col) if vertical else (row, col + i) for i in range(length)}
                if not cells & self.ships:
                    self.ships |= cells
                    break
        self.map = [["." for _ in range(size)] for _ in range(size)]

    def shots(self) -> list[list[str]]:
        """What a player sees: a copy of the map of hits and misses."""
        return [row[:] for row in self.map]

    def fire(self, target) -> tuple[int, str]:
        """Fire at ``target``; returns (reward, feedback). An invalid target is a wasted turn."""
        if not (isinstance(target, (tuple, list)) and len(target) == 2 and all(type(v) is int for v in target)):
            return 0, f"Invalid shot {target!r}: select_coordinate must return a (row, col) pair of integers."
        row, col = target
        if not (0 <= row < self.size and 0 <= col < self.size):
            return 0, f"Invalid shot {target!r}: rows and columns go from 0 to {self.size - 1}."
        if self.map[row][col] != ".":
            return 0, f"Wasted shot at {target!r}: that square was already shot. Pick an unknown square."
        hit = (row, col) in self.ships
        self.map[row][col] = "X" if hit else "O"
        return int(hit), f"Got {int(hit)} reward: {'a hit' if hit else 'a miss'} at {target!r}."

    @property
    def sunk(self) -> bool:
        return sum(row.count("X") for row in self.map) == len(self.ships)


class Agent(tg.Module):
    """Plans from the map, then picks a coordinate; both methods are trainable code."""

    def forward(self, map):
        plan = self.reason(map)
        return self.select_coordinate(map, plan)

    @tg.bundle(trainable=True)
    def reason(self, map):
        """Given a map, analyze the board in a Battleship game.
        X denotes hits, O denotes misses, and . denotes unknown positions."""
        return None

    @tg.bundle(trainable=True)
    def select_coordinate(self, map, plan):
        """Given a map and the plan from reason(), select a target coordinate (row, col)
        in a Battleship game. X denotes hits, O denotes misses, and . denotes unknown positions."""
        return None


def evaluate(agent: Agent, boards: int = 5, shots: int = 12, size: int = 6) -> float:
    """Mean hits per shot over the first ``shots`` shots on fixed boards (not traced)."""
    hits = 0
    with tg.no_trace():  # nothing recorded: the reference's stop_tracing()
        for seed in range(1000, 1000 + boards):
            board = Board(size, seed)
            for _ in range(shots):
                try:
                    target = agent(tg.node(board.shots())).data
                except tg.ExecutionError:
                    continue  # a crashing agent wastes its turn
                hits += board.fire(target)[0]
    return hits / (boards * shots)


# -- a stand-in for a model, so the example runs offline -----------------------------------

_SCAN = '''\
def select_coordinate(self, map, plan):
    """Given a map and the plan from reason(), select a target coordinate (row, col)
    in a Battleship game. X denotes hits, O denotes misses, and . denotes unknown positions."""
    for row, line in enumerate(map):
        for col, cell in enumerate(line):
            if cell == ".":
                return (row, col)
    return (0, 0)
'''
_REASON = '''\
def reason(self, map):
    """Given a map, analyze the board in a Battleship game.
    X denotes hits, O denotes misses, and . denotes unknown positions."""
    size = len(map)
    targets = []
    for row in range(size):
        for col in range(size):
            if map[row][col] != "X":
                continue
            for r, c in ((row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)):
                if 0 <= r < size and 0 <= c < size and map[r][c] == "." and (r, c) not in targets:
                    targets.append((r, c))
    return {"targets": targets}
'''
_HUNT = '''\
def select_coordinate(self, map, plan):
    """Given a map and the plan from reason(), select a target coordinate (row, col)
    in a Battleship game. X denotes hits, O denotes misses, and . denotes unknown positions."""
    if plan and plan.get("targets"):
        return plan["targets"][0]
    unknown = [(r, c) for r, line in enumerate(map) for c, cell in enumerate(line) if cell == "."]
    spread = [(r, c) for r, c in unknown if (r + c) % 2 == 0]
    return (spread or unknown or [(0, 0)])[0]
'''


def stand_in_model(request) -> str:
    """NOT a language model: it knows this one game. It reads the two methods' code from
    the prompt and answers with the next of two prepared rewrites: first any legal shot,
    then "fire next to a hit, else on a checkerboard". Use --model for a real model."""
    prompt = request.messages[1]["content"]
    codes = dict(re.findall(r"^(\w+)\.code =.*?\n```\n(.*?)\n```", prompt, re.M | re.S))
    if "return None" in codes.get("select_coordinate", ""):
        reasoning = "select_coordinate returns None, which is not a shot; return the first unknown square."
        suggestion = {"select_coordinate.code": _SCAN}
    elif "return None" in codes.get("reason", ""):
        reasoning = (
            "Scanning in order wastes shots. Ships are contiguous: let reason list the unknown squares next to "
            "a hit, and let select_coordinate fire there first, else on a checkerboard pattern."
        )
        suggestion = {"reason.code": _REASON, "select_coordinate.code": _HUNT}
    else:
        reasoning, suggestion = "The strategy already follows up on hits; I see nothing left to change.", {}
    return json.dumps({"reasoning": reasoning, "suggestion": suggestion})


def choose_llm(model: str | None) -> tg.LLM:
    """The configured model, else the offline stand-in."""
    model = tg.configured_model(model)  # the argument, $TRACEGRAD_MODEL or the embedded model
    if model:
        return tg.LLM(model)
    print("(no model configured: using the offline stand-in; pass --model NAME for a real one)")
    return tg.LLM("stand-in/battleship", transport=tg.ScriptedTransport(stand_in_model), cache=False)


def train(llm: tg.LLM, rounds: int = 4, size: int = 6) -> tuple[float, float]:
    """Play and learn online for ``rounds`` shots; returns the score before and after."""
    agent = Agent()
    optimizer = tg.OptoPrime(agent, llm=llm)
    before = evaluate(agent, size=size)
    print(f"before training: {before:.2f} hits per shot")
    board = Board(size, seed=0)
    for i in range(1, rounds + 1):
        map = tg.node(board.shots(), name="map")
        try:
            output = agent(map)
            reward, feedback = board.fire(output.data)
        except tg.ExecutionError as err:  # the agent's code crashed: the error node is the output
            output, reward, feedback = err.node, 0, f"The agent's code raised {err.exception!r}."
        hint = f"The current code gets {reward} reward. We should try to get as many hits as possible."
        optimizer.objective = f"{optimizer.default_objective} Hint: {hint}"
        optimizer.zero_feedback()
        optimizer.backward(output, feedback)
        report = optimizer.step()
        score = evaluate(agent, size=size)
        print(f"round {i}: {feedback} -> {report.status}; evaluation: {score:.2f} hits per shot")
        if board.sunk:
            board = Board(size, seed=i)
    after = evaluate(agent, size=size)
    print(f"hits per shot: {before:.2f} -> {after:.2f}")
    for path, param in agent.named_parameters():
        print(f"--- {path}\n{param.data}")
    return before, after


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a litellm model name, or local (default: $TRACEGRAD_MODEL, the embedded model, a stand-in)"
    )
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    train(choose_llm(args.model), args.rounds)


if __name__ == "__main__":
    try:
        main()
    except tg.TracegradError as exc:  # a failed model call, a budget reached ...
        raise SystemExit(f"stopped: {exc}") from None
