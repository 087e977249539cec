"""Which nodes of a trace a picture draws, and which it summarises.

A picture of a big trace stays readable, and ``dot`` stays fast, because most nodes are
folded into a few summary boxes:

* **loops**: a block of operations repeated at least ``min_repeats`` times in a row
  (the same operators, wired the same way) becomes one box, ``repeated N times``;
* **chains**: the inside of a linear run of more than ``max_chain`` operations (each
  the only user of the one before) becomes one box between the run's first and last
  operation (and either side of a node that must be seen);
* a plain input used only inside one box is folded into it;
* past ``max_nodes`` boxes, the ones furthest from the outputs are left out and
  counted in one ``N more nodes`` marker.

Outputs, errors, parameters and nodes that received feedback are never folded (nor
left out, while the limit allows). Everything is linear in the number of nodes, up to
a factor of ``MAX_PERIOD``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tracegrad.visualize.saved import SavedNode

#: The longest loop body looked for, in operations.
MAX_PERIOD = 12


@dataclass
class Group:
    """Nodes drawn as one box: a repeated loop body (``repeats`` times) or a chain."""

    key: str
    members: list[int]
    repeats: int = 0
    body: list[str] = field(default_factory=list)

    @property
    def is_loop(self) -> bool:
        return self.repeats > 0


@dataclass
class Plan:
    """What to draw: ``place[i]`` is the box node ``i`` is drawn in (its own ``n{i}``, a
    group's key, or ``MORE`` when it is left out); ``hidden`` counts the nodes left out."""

    place: list[str]
    singles: list[int]
    groups: list[Group]
    hidden: int = 0


MORE = "more"


def plan(
    nodes: Sequence[SavedNode],
    *,
    collapse: bool = True,
    min_repeats: int = 3,
    max_chain: int = 8,
    max_nodes: int | None = 300,
) -> Plan:
    """Decide, for each node, the box it is drawn in (rules in the module docstring)."""
    children: list[list[int]] = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        for p in n.parents:
            children[p].append(i)
    owner: list[int] = [-1] * len(nodes)  # the group each node is folded into
    groups: list[Group] = []
    if collapse:
        _find_loops(nodes, owner, groups, min_repeats)
        _find_chains(nodes, children, owner, groups, max_chain)
        _fold_inputs(nodes, children, owner, groups)
    place = [groups[owner[i]].key if owner[i] >= 0 else f"n{i}" for i in range(len(nodes))]
    singles = [i for i in range(len(nodes)) if owner[i] < 0]
    result = Plan(place=place, singles=singles, groups=groups)
    if max_nodes is not None and len(singles) + len(groups) > max_nodes:
        _limit(nodes, result, max_nodes)
    return result


def pinned(node: SavedNode) -> bool:
    """Whether a node is always drawn on its own: an output, error, parameter or one
    that received feedback."""
    return node.output or node.type in ("error", "parameter") or bool(node.feedback)


def _find_loops(nodes: Sequence[SavedNode], owner: list[int], groups: list[Group], min_repeats: int) -> None:
    ops = [i for i, n in enumerate(nodes) if n.type == "operation"]
    position = {i: q for q, i in enumerate(ops)}
    tokens: list[object] = []
    for q, i in enumerate(ops):
        n = nodes[i]
        if pinned(n):
            tokens.append(i)  # unique: never part of a repeat
            continue
        reach = 2 * MAX_PERIOD  # a parent further back (made before the loop) reads the same in every round
        offsets = tuple(sorted(min(q - position[p], reach) for p in n.parents if p in position))
        leaves = sum(1 for p in n.parents if p not in position)
        tokens.append((n.operation, offsets, leaves))
    q = 0
    while q < len(ops):
        best_period, best_repeats = 0, 0
        for period in range(1, MAX_PERIOD + 1):
            if q + period * max(min_repeats, 2) > len(ops):
                break
            block = tokens[q : q + period]
            repeats = 1
            while tokens[q + repeats * period : q + (repeats + 1) * period] == block:
                repeats += 1
            if repeats >= min_repeats and repeats * period > best_repeats * best_period:
                best_period, best_repeats = period, repeats
        if not best_repeats:
            q += 1
            continue
        members = ops[q : q + best_period * best_repeats]
        body = [nodes[i].operation or "" for i in members[:best_period]]
        _claim(owner, groups, Group(f"g{len(groups)}", members, best_repeats, body))
        q += best_period * best_repeats


def _find_chains(
    nodes: Sequence[SavedNode], children: list[list[int]], owner: list[int], groups: list[Group], max_chain: int
) -> None:
    def op(i: int) -> bool:
        return owner[i] < 0 and nodes[i].type in ("operation", "error")

    following: dict[int, int] = {}  # a chain link: i -> its only child, whose only operation parent is i
    for i in range(len(nodes)):
        kids = children[i]
        if op(i) and len(kids) == 1 and op(kids[0]) and _operation_parents(nodes, kids[0]) == [i]:
            following[i] = kids[0]
    linked = set(following.values())
    for head in following:
        if head in linked:
            continue
        chain = [head]
        while chain[-1] in following:
            chain.append(following[chain[-1]])
        run: list[int] = []  # free nodes inside the chain (its ends are always drawn)
        for i in [*chain[1:-1], -1]:
            if i >= 0 and not pinned(nodes[i]):
                run.append(i)
                continue
            if len(run) + 2 > max_chain:
                _claim(owner, groups, Group(f"g{len(groups)}", run))
            run = []


def _operation_parents(nodes: Sequence[SavedNode], i: int) -> list[int]:
    return [p for p in nodes[i].parents if nodes[p].type in ("operation", "error")]


def _fold_inputs(nodes: Sequence[SavedNode], children: list[list[int]], owner: list[int], groups: list[Group]) -> None:
    """Plain inputs whose users all lie in one group are drawn inside it."""
    for i, n in enumerate(nodes):
        if n.type != "value" or pinned(n) or owner[i] >= 0 or not children[i]:
            continue
        first = owner[children[i][0]]
        if first >= 0 and all(owner[c] == first for c in children[i]):
            owner[i] = first
            groups[first].members.append(i)


def _claim(owner: list[int], groups: list[Group], group: Group) -> None:
    for i in group.members:
        owner[i] = len(groups)
    groups.append(group)


def _limit(nodes: Sequence[SavedNode], result: Plan, max_nodes: int) -> None:
    """Keep ``max_nodes`` boxes: pinned nodes first, then the ones nearest the outputs."""
    keep_slots = max(max_nodes - 1, 1)  # one slot for the marker
    boxes: list[tuple[int, int, str]] = []  # (priority, -latest member, key)
    for i in result.singles:
        n = nodes[i]
        rank = 0 if n.output or n.type == "error" else 1 if n.feedback else 2 if n.type == "parameter" else 3
        boxes.append((rank, -i, f"n{i}"))
    for g in result.groups:
        boxes.append((3, -max(g.members), g.key))
    boxes.sort()
    kept = {key for _, _, key in boxes[:keep_slots]}
    result.singles = [i for i in result.singles if f"n{i}" in kept]
    result.groups = [g for g in result.groups if g.key in kept]
    for i, key in enumerate(result.place):
        if key not in kept:
            result.place[i] = MORE
            result.hidden += 1
