"""The engine's modules form an acyclic import graph, and operators live on the class."""

from __future__ import annotations

import ast
from pathlib import Path

import tracegrad as tg
from tracegrad.trace.operators import METHOD_NAMES, NodeOperators

ROOT = Path(tg.__file__).parent
ENGINE = (
    "__init__", "arguments", "backward", "containers", "context", "kind", "node", "operators", "query", "recording",
    "weak_children",
)  # fmt: skip
CHECKED = [
    *(ROOT / "trace" / f"{name}.py" for name in ENGINE),
    *(ROOT / "nodes" / f"{name}.py" for name in ("bundle", "code", "kinds", "array", "factory")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def known_modules() -> set[str]:
    return {module_name(p) for p in ROOT.rglob("*.py")}


def is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path) -> tuple[set[str], list[str]]:
    """tracegrad modules imported at module level, and those imported inside functions."""
    known = known_modules()
    tree = ast.parse(path.read_text())
    top: set[str] = set()
    local: list[str] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = [t for t in targets(child) if t.startswith("tracegrad")]
                (local.extend(names) if in_function else top.update(names))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return top, local


def test_no_function_local_imports_of_tracegrad_modules():
    for path in CHECKED:
        _, local = imports(path)
        assert local == [], f"{path.name} imports {local} inside a function"


def test_engine_import_graph_is_acyclic():
    graph = {module_name(p): imports(p)[0] for p in CHECKED}
    package = "tracegrad.trace"
    for name, deps in graph.items():
        if name.startswith(package + ".") and name != package:
            assert package not in deps, f"{name} imports its own package"
            assert not any(d.startswith("tracegrad.nodes") for d in deps), f"the engine ({name}) imports nodes/"
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "active", "import cycle: " + " -> ".join([*path, name])
        state[name] = "active"
        for dep in graph.get(name, ()):
            if dep != package or not name.startswith(package + "."):
                visit(dep, [*path, name])
        state[name] = "done"

    for name in graph:
        visit(name, [])


def test_operators_are_declared_in_the_class_body_of_node():
    traced = ("__add__", "__radd__", "__eq__", "__lt__", "__neg__", "__getitem__", "__call__", "__iter__")
    for name in (*traced, "len", "getattr", "keys", *METHOD_NAMES):
        assert name in vars(tg.Node), name
    for name in ("__bool__", "__len__", "__contains__", "__str__", "__format__", "__int__", "__index__"):
        assert name in vars(NodeOperators), name
    assert NodeOperators in tg.Node.__mro__
    assert tg.Node.__hash__ is object.__hash__
    node_source = (ROOT / "trace" / "node.py").read_text()
    operators_source = (ROOT / "trace" / "operators.py").read_text()
    assert "setattr(" not in node_source + operators_source  # nothing installed from outside
