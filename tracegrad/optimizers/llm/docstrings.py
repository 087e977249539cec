"""A code variable's docstring is shown once, in words, and kept by the optimizer.

Asking a model to write a function back means asking it to copy its docstring too:
tokens that carry no information, and -- inside a JSON string, where every quote is
escaped -- the most common reason a small model's code does not parse. So the prompt
shows the function without its docstring (the docstring goes in the variable's note)
and a suggested function without a docstring gets the current one back. A model that
writes a docstring of its own keeps it.
"""

from __future__ import annotations

import ast


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name]
    return found[-1] if found else None


def _docstring_node(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Expr | None:
    first = fn.body[0] if fn.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def split_docstring(source: str, function: str) -> tuple[str, str | None]:
    """``source`` without the docstring of ``function``, and that docstring (None when
    it has none, the code does not parse, or the docstring is all the body holds)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source, None
    fn = _function(tree, function)
    doc = _docstring_node(fn) if fn is not None else None
    if fn is None or doc is None or len(fn.body) == 1 or doc.end_lineno is None:
        return source, None
    lines = source.splitlines(keepends=True)
    if lines[doc.lineno - 1][: doc.col_offset].strip() or lines[doc.end_lineno - 1][doc.end_col_offset :].strip():
        return source, None  # the docstring shares a line with other code: leave it
    kept = lines[: doc.lineno - 1] + lines[doc.end_lineno :]
    return "".join(kept), ast.get_docstring(fn)


def restore_docstring(source: str, function: str, docstring: str | None) -> str:
    """``source`` with ``docstring`` put back into ``function`` when it has none."""
    if not docstring:
        return source
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source  # the kind's validation says what is wrong with it
    fn = _function(tree, function)
    if fn is None or _docstring_node(fn) is not None or not fn.body:
        return source
    lines = source.splitlines(keepends=True)
    body = fn.body[0]
    if body.lineno == fn.lineno:  # `def f(x): return x` -- a one-line body
        return source
    indent = lines[body.lineno - 1][: body.col_offset]
    text = docstring.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    first, *rest = text.splitlines() or [""]
    if rest:
        block = [f'{indent}"""{first}', *(f"{indent}{line}" if line else "" for line in rest), f'{indent}"""']
    else:
        block = [f'{indent}"""{first}"""']
    return "".join(lines[: body.lineno - 1]) + "\n".join(block) + "\n" + "".join(lines[body.lineno - 1 :])
