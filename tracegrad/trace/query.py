"""Graph queries for optimizers and users: subgraphs of parameters, and networkx export.

``subgraph(parameters)`` answers "which part of the trace does the feedback on these
parameters speak about?": the operations on some path from a parameter to an output
that received feedback, with their direct inputs, in execution order (``topological``:
parents before children, the same order whatever threads recorded the graph). Linear
in the number of ancestors of the outputs.

One naming scheme for nodes, ``unique_names(nodes)``, shared by optimizers' prompts,
pictures and the networkx export, linear in the number of nodes:

* a given name (``node.given_name``: set by the user, a module path or an optimizer)
  is kept; trainable nodes' given names take precedence over other nodes' given names,
  and a name given to several nodes is numbered for the later ones: ``words``,
  ``words_2``, ``words_3``;
* an unnamed node is numbered per base name (its operation, its value's type, or
  ``param``) in the order the nodes are given: ``add1``, ``add2``, ``str1``; a base
  name ending in a digit gets an underscore (``int32_1``). Never by global serial.

Names are computed over a whole graph, ``topological(outputs)``:
``Subgraph.names`` are those of all the ancestors of its outputs, restricted to its
nodes, so a node has the same name in an optimizer's prompt and in the picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracegrad.trace.backward import topological
from tracegrad.trace.node import ErrorNode, Feedback, Node, OperationNode, ParameterNode, iter_nodes

if TYPE_CHECKING:
    import networkx


@dataclass
class Subgraph:
    """The part of a trace that connects some parameters to the outputs given feedback.

    ``nodes`` is in execution (topological) order; ``names`` maps each of them to its
    name under ``unique_names`` of all the ancestors of ``outputs``, so that a picture
    of those outputs names every node the same way.
    """

    nodes: list[Node]
    parameters: list[ParameterNode]
    operations: list[OperationNode]
    inputs: list[Node]
    outputs: list[Node]
    feedback: list[Feedback]
    names: dict[Node, str] = field(repr=False)

    @property
    def intermediates(self) -> list[OperationNode]:
        """Operation results that are not outputs."""
        outs = {id(n) for n in self.outputs}
        return [n for n in self.operations if id(n) not in outs]

    def name(self, node: Node) -> str:
        return self.names[node]

    def expression(self, value: Any, max_chars: int = 80) -> str:
        """Render an argument: nodes by name, containers element-wise, constants by repr."""
        return expression(value, self.names, max_chars)

    def code_line(self, node: OperationNode, max_chars: int = 80) -> str:
        """``name = call(...)``: one line of the program this subgraph is, with an
        ``# also reads ...`` comment naming nodes the call read without being given."""
        line = f"{self.names[node]} = {call_expression(node, self.names, max_chars)}"
        captured = node.captured
        if captured:
            line += "  # also reads " + ", ".join(self.names.get(c) or c.name for c in captured)
        return line

    def to_networkx(self) -> networkx.DiGraph:
        return to_networkx(self.nodes, names=self.names)


def subgraph(parameters: Iterable[ParameterNode], outputs: Sequence[Node] | None = None) -> Subgraph:
    """The minimal subgraph joining ``parameters`` to ``outputs`` (default: the outputs
    whose feedback reached the parameters), with each operation's direct inputs."""
    params = list(dict.fromkeys(parameters))
    feedback: list[Feedback] = []
    if outputs is None:
        seen_entries: set[int] = set()
        for p in params:
            for entry in p._feedback or ():
                if id(entry) not in seen_entries:
                    seen_entries.add(id(entry))
                    feedback.append(entry)
        outputs = list({id(e.output): e.output for e in feedback}.values())
    else:
        outputs = list(outputs)
        feedback = [e for out in outputs for e in (out._feedback or ())]

    upstream = topological(outputs)
    param_ids = {id(p) for p in params}
    depends: set[int] = set()
    for node in upstream:  # forward pass in topological order
        if id(node) in param_ids:
            depends.add(id(node))
            continue
        for parent in node._parents:
            if id(parent) in depends:
                depends.add(id(node))
                break

    core = [n for n in upstream if id(n) in depends]
    members = {id(n) for n in core}
    for node in core:
        members.update(id(parent) for parent in node._parents)
    nodes = [n for n in upstream if id(n) in members]
    out_ids = {id(n) for n in outputs}
    names = unique_names(upstream)  # the names a picture of the same outputs shows
    return Subgraph(
        nodes=nodes,
        parameters=[n for n in nodes if isinstance(n, ParameterNode) and id(n) in param_ids],
        operations=[n for n in core if isinstance(n, OperationNode)],
        inputs=[n for n in nodes if id(n) not in depends and not (isinstance(n, ParameterNode) and id(n) in param_ids)],
        outputs=[n for n in nodes if id(n) in out_ids],
        feedback=feedback,
        names=names if len(nodes) == len(upstream) else {n: names[n] for n in nodes},
    )


def unique_names(nodes: Iterable[Node]) -> dict[Node, str]:
    """A name per node, unique among ``nodes`` (the scheme in the module docstring)."""
    trainable: list[Node] = []
    named: list[Node] = []
    unnamed: list[Node] = []
    for node in nodes:
        if node._name is None:
            unnamed.append(node)
        else:
            (trainable if node.trainable else named).append(node)
    names: dict[Node, str] = {}
    taken: set[str] = set()
    repeats: list[Node] = []
    for node in (*trainable, *named):  # the first holder of a given name keeps it
        if node._name in taken:
            repeats.append(node)
        else:
            taken.add(node._name)  # type: ignore[arg-type]
            names[node] = node._name  # type: ignore[assignment]
    counters: dict[str, int] = {}  # the last number used per prefix: keeps the scheme linear
    for node in repeats:  # words_2, words_3 ...
        prefix = f"{node._name}_"
        k = max(counters.get(prefix, 1), 1) + 1
        while f"{prefix}{k}" in taken:
            k += 1
        counters[prefix] = k
        taken.add(name := f"{prefix}{k}")
        names[node] = name
    # add1, add2, str1; int32_1 for a base name ending in a digit. Numbered names of two
    # prefixes never clash (a prefix never ends in a digit), so only given ones are checked.
    by_base: dict[str, list] = {}  # base name -> [prefix, last number], shared per prefix
    by_prefix: dict[str, list] = {}
    for node in unnamed:
        base = node._base_name()
        state = by_base.get(base)
        if state is None:
            prefix = f"{base}_" if base[-1:].isdigit() else base
            state = by_prefix.setdefault(prefix, [prefix, counters.get(prefix, 0)])
            by_base[base] = state
        state[1] += 1
        name = f"{state[0]}{state[1]}"
        while name in taken:
            state[1] += 1
            name = f"{state[0]}{state[1]}"
        names[node] = name
    return names


def expression(value: Any, names: dict[Node, str], max_chars: int = 80) -> str:
    """Render ``value`` as source: nodes by name, containers element-wise, constants by repr."""
    if isinstance(value, Node):
        return names.get(value) or value.name
    if type(value) in (list, tuple):
        body = ", ".join(expression(v, names, max_chars) for v in value)
        if type(value) is tuple:
            return f"({body},)" if len(value) == 1 else f"({body})"
        return f"[{body}]"
    if type(value) is dict:
        return "{" + ", ".join(f"{k!r}: {expression(v, names, max_chars)}" for k, v in value.items()) + "}"
    text = repr(value)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def call_expression(node: OperationNode, names: dict[Node, str], max_chars: int = 80) -> str:
    """The call that produced ``node``, rendered with the names in ``names`` and constants
    cut to ``max_chars``: the one renderer of calls, for prompts and pictures alike."""
    args = [expression(a, names, max_chars) for a in node._args]
    kwargs = {k: expression(v, names, max_chars) for k, v in (node._kwargs or {}).items()}
    return node._op.format_call(args, kwargs)


def to_networkx(roots: Node | Iterable[Node], *, names: dict[Node, str] | None = None) -> networkx.DiGraph:
    """The trace as a ``networkx.DiGraph``: nodes keyed by unique name, edges parent -> child.

    Given output nodes, exports them and everything upstream; node attributes are
    ``node`` (the Node), ``type`` (value / parameter / operation / error), ``value``,
    ``description`` and ``feedback``; edge attribute ``argument`` names the input.
    """
    import networkx as nx

    roots = [roots] if isinstance(roots, Node) else list(roots)
    nodes = topological(roots)
    names = names if names is not None else unique_names(nodes)
    graph = nx.DiGraph()
    for n in nodes:
        graph.add_node(
            names[n], node=n, type=node_type(n), value=n._data, description=n.description,
            feedback=[e.value for e in n._feedback or ()],
        )  # fmt: skip
    for n in nodes:
        if isinstance(n, OperationNode):
            for arg, parent in _argument_names(n):
                if parent in names:
                    graph.add_edge(names[parent], names[n], argument=arg)
    return graph


def node_type(node: Node) -> str:
    """``"error"``, ``"operation"``, ``"parameter"`` or ``"value"``."""
    if isinstance(node, ErrorNode):
        return "error"
    if isinstance(node, OperationNode):
        return "operation"
    if isinstance(node, ParameterNode):
        return "parameter"
    return "value"


def _argument_names(node: OperationNode) -> list[tuple[str, Node]]:
    pairs: list[tuple[str, Node]] = []
    seen: set[int] = set()
    for arg, value in node.inputs.items():
        for parent in iter_nodes(value):
            if id(parent) not in seen:
                seen.add(id(parent))
                pairs.append((arg, parent))
    return pairs
