"""The optimization problem an LLM optimizer shows a model, read off the trace.

``build_problem`` turns the subgraph joining some parameters to the outputs that got
feedback into a small program: one code line per traced call in execution order, what
each function does, the variables the model may change (with kind and constraints),
the fixed inputs, the intermediate and output values, and the feedback. Rendering it
as text, within a token budget, is ``tracegrad.optimizers.llm.render``'s job.

A call of a ``@bundle(trace_inside=True)`` function is expanded: under its line come
the inner steps that led from the variables (or values computed from them) to its
result, one level deeper (``Entry.depth``), with their values as intermediates and
the values they take from inside the call (constants made there) as inputs. The call
of a function whose code is a variable shows all its inner steps. Inner nodes are
named by the one naming scheme over the outer trace and the inner nodes together, so
outer nodes keep their names and inner names never clash with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tracegrad._text import truncate
from tracegrad.nodes.kinds import Code
from tracegrad.nodes.nested import inner_graph
from tracegrad.optimizers.llm.docstrings import split_docstring
from tracegrad.optimizers.llm.values import feedback_text, value_text
from tracegrad.trace import (
    Node,
    OperationNode,
    Operator,
    ParameterNode,
    Subgraph,
    call_expression,
    subgraph,
    topological,
    unique_names,
)
from tracegrad.trace.operators import OPERATORS

#: Longest rendering of a constant argument inside a code line, in characters.
MAX_CONSTANT_CHARS = 160


@dataclass
class Entry:
    """One named value of the problem; ``note`` says what it is (kind, constraints).
    ``depth`` is how deep inside traced calls a code line is (0: the outer trace)."""

    name: str
    value: str
    note: str = ""
    depth: int = 0


@dataclass
class Problem:
    """Everything a model needs to propose new values, as plain text pieces.

    ``code`` holds one line per operation, named after the value it computes (its
    ``note`` says which code variables it runs and which values it reads inside),
    each followed by the inner steps of a traced call (``Entry.depth`` above 0).
    ``parameters`` maps each variable name to its node. Every node is named as in the
    subgraph's ``names``, so a prompt and a picture of the same trace agree.
    """

    instruction: str
    code: list[Entry] = field(default_factory=list)
    functions: list[Entry] = field(default_factory=list)
    variables: list[Entry] = field(default_factory=list)
    inputs: list[Entry] = field(default_factory=list)
    intermediates: list[Entry] = field(default_factory=list)
    outputs: list[Entry] = field(default_factory=list)
    feedback: list[Entry] = field(default_factory=list)
    parameters: dict[str, ParameterNode] = field(default_factory=dict)


#: The most characters of a code variable's docstring shown in its note.
DOCSTRING_CHARS = 300


def variable_note(param: ParameterNode) -> str:
    """The kind's constraints and the parameter's description (the bare kind of a plain
    number or text says nothing its value does not already show)."""
    described = param.kind.describe()
    parts = [described] if described != param.kind.name else []
    if isinstance(param.kind, Code):
        doc = split_docstring(str(param.value), param.kind.function)[1]
        if doc:
            shown = truncate(" ".join(doc.split()), DOCSTRING_CHARS).rstrip(".")
            parts.append(f"its docstring, kept as it is: {shown}")
    if param.description:
        parts.append(param.description)
    return "; ".join(parts)


def build_problem(parameters: Iterable[ParameterNode], instruction: str) -> Problem:
    """The problem for the parameters that received feedback, from their subgraph."""
    params = [p for p in parameters if p.has_feedback]
    return problem_from_subgraph(subgraph(params), instruction)


def problem_from_subgraph(graph: Subgraph, instruction: str) -> Problem:
    """The problem a subgraph poses; linear in its size."""
    variables = list(graph.parameters)
    variable_ids = {id(p) for p in variables}
    output_ids = {id(n) for n in graph.outputs}
    coded = {id(p) for p in variables if p.kind.name == "code"}
    rows, inner_inputs = _inner_rows(graph, coded)
    names = _names(graph, rows, inner_inputs)
    problem = Problem(instruction=instruction, parameters={names[p]: p for p in variables})

    seen_ops: set[int] = set()
    for op_node, depth in rows:
        line, note, runs_code = _code_line(op_node, names, coded)
        problem.code.append(Entry(names[op_node], line, note, depth))
        op = op_node.operator
        if id(op) not in seen_ops:
            seen_ops.add(id(op))
            doc = "" if runs_code or _is_builtin(op) else " ".join(op.description.split())
            if doc:  # a function whose code is a variable is documented by that code
                problem.functions.append(Entry(_signature(op), doc))

    for p in variables:
        problem.variables.append(Entry(names[p], value_text(p), variable_note(p)))
    for n in (*graph.inputs, *inner_inputs):
        problem.inputs.append(Entry(names[n], value_text(n), n.description or ""))
    for n, depth in rows:
        if depth or id(n) not in output_ids:
            problem.intermediates.append(Entry(names[n], value_text(n)))
    for n in graph.outputs:
        if id(n) not in variable_ids:
            problem.outputs.append(Entry(names[n], value_text(n)))

    by_output: dict[int, Entry] = {}
    for entry in graph.feedback:
        text = feedback_text(entry.value)
        known = by_output.get(id(entry.output))
        if known is None:
            name = names.get(entry.output) or entry.output.name
            by_output[id(entry.output)] = Entry(name, text)
        elif text not in known.value.split("\n"):
            known.value += "\n" + text
    problem.feedback = list(by_output.values())
    return problem


def _inner_rows(graph: Subgraph, coded: set[int]) -> tuple[list[tuple[OperationNode, int]], list[Node]]:
    """The operations to show with their depth (each traced call followed by its inner
    steps), and the nodes made inside those calls that the steps take as inputs."""
    rows: list[tuple[OperationNode, int]] = []
    inputs: dict[int, Node] = {}
    depends = {id(n) for n in graph.parameters}
    depends.update(id(n) for n in graph.operations)  # the nodes computed from the variables

    def visit(node: OperationNode, depth: int) -> None:
        rows.append((node, depth))
        inner = inner_graph(node)
        if inner is None:
            return
        if any(id(p) in coded for p in node.parents):  # runs a variable's code: every step
            steps = inner.steps()
        else:
            sources = [p for p in node.parents if id(p) in depends]
            steps = inner.steps(sources) if sources else []
        shown = {id(s) for s in steps}
        depends.update(shown)
        for step in steps:
            for parent in step.parents:
                if id(parent) not in shown and inner.is_inner(parent):
                    inputs.setdefault(id(parent), parent)
            visit(step, depth + 1)

    for op_node in graph.operations:
        visit(op_node, 0)
    return rows, list(inputs.values())


def _names(graph: Subgraph, rows: list[tuple[OperationNode, int]], inner_inputs: list[Node]) -> dict[Node, str]:
    """The subgraph's names, plus names for the inner nodes: the one naming scheme over
    the whole outer trace followed by the inner nodes, so none clashes with an outer name."""
    inner = [n for n, depth in rows if depth] + inner_inputs
    if not inner:
        return graph.names
    outer = topological(graph.outputs)
    together = unique_names([*outer, *inner])
    names = dict(graph.names)
    taken = set(names.values())
    taken.update(together[n] for n in outer)
    for node in inner:
        name, k = together[node], 2
        while name in taken:  # an inner given name that took precedence over an outer one
            name, k = f"{together[node]}_{k}", k + 1
        taken.add(name)
        names[node] = name
    return names


def _code_line(node: OperationNode, names: dict[Node, str], coded: set[int]) -> tuple[str, str, bool]:
    """``name = call(args)``; a note on the code parameters it runs and other values it
    reads inside; and whether it runs the code of a variable."""
    line = f"{names[node]} = {call_expression(node, names, MAX_CONSTANT_CHARS)}"
    captured = node.captured
    runs = [names.get(c, c.name) for c in captured if id(c) in coded]
    reads = [names.get(c, c.name) for c in captured if id(c) not in coded]
    notes = ([f"runs {', '.join(runs)}"] if runs else []) + ([f"reads {', '.join(reads)}"] if reads else [])
    return line, "; ".join(notes), bool(runs)


def _is_builtin(op: Operator) -> bool:
    """Operators such as ``+`` or ``[]``: the code line already says what they do."""
    return OPERATORS.get(op.name) is op or (op.source is None and op.description.startswith("["))


def _signature(op: Operator) -> str:
    return f"{op.name}({', '.join(op.argnames)})" if op.argnames else op.name
