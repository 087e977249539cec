"""A code variable's docstring is shown once and kept: the model need not copy it."""

from __future__ import annotations

import ast
import json

import tracegrad as tg
from tracegrad.optimizers.llm.docstrings import restore_docstring, split_docstring

SOURCE = '''def f(n):
    """Return True when n is even.

    Zero is even.
    """
    return n % 2 == 1
'''


def test_the_docstring_is_split_off_and_put_back():
    code, doc = split_docstring(SOURCE, "f")
    assert code == "def f(n):\n    return n % 2 == 1\n"
    assert doc == "Return True when n is even.\n\nZero is even."
    back = restore_docstring("def f(n):\n    return n % 2 == 0\n", "f", doc)
    assert ast.get_docstring(ast.parse(back).body[0]) == doc
    assert back.endswith("    return n % 2 == 0\n")


def test_a_docstring_of_the_models_own_is_kept():
    mine = 'def f(n):\n    """Mine."""\n    return 0\n'
    assert restore_docstring(mine, "f", "Theirs.") == mine


def test_code_that_is_only_a_docstring_or_does_not_parse_is_left_alone():
    only = 'def f():\n    """Just this."""\n'
    assert split_docstring(only, "f") == (only, None)
    assert split_docstring("def f(:", "f") == ("def f(:", None)
    assert restore_docstring("def f(:", "f", "doc") == "def f(:"


def test_quotes_and_backslashes_in_a_docstring_survive():
    doc = 'Say """hi""" and \\n literally.'
    back = restore_docstring("def f():\n    return 1\n", "f", doc)
    assert ast.get_docstring(ast.parse(back).body[0]) == doc


def test_a_step_keeps_the_docstring_of_a_function_the_model_rewrote(make_llm):
    @tg.bundle(trainable=True)
    def is_even(n):
        """Return True when n is even."""
        return n % 2 == 1

    out = is_even(2)
    out.backward("is_even(2) returned False, expected True")
    name = next(iter(tg.OptoPrime(is_even.parameters()).names))
    new = "def is_even(n):\n    return n % 2 == 0"
    llm, transport = make_llm([json.dumps({"reasoning": "flip", "suggestion": {name: new}})])
    opt = tg.OptoPrime(is_even.parameters(), llm=llm)
    opt.step()
    prompt = transport.requests[0].messages[-1]["content"]
    assert '"""' not in prompt and "its docstring, kept as it is: Return True when n is even" in prompt
    assert is_even(4).data is True
    assert ast.get_docstring(ast.parse(is_even.parameter.data).body[0]) == "Return True when n is even."
