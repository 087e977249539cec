"""``python -m tracegrad.llm.local.serve``: llama.cpp's OpenAI-compatible server (same
arguments as ``python -m llama_cpp.server``) with this package's grammar sampling, so
that constrained replies decode as fast on the server as in process (see
``tracegrad.llm.local.sampling``). :class:`~tracegrad.llm.local.LocalServer` runs it.
"""

from __future__ import annotations

import runpy

import llama_cpp

from tracegrad.llm.local.sampling import grammar_first_llama


def main() -> None:
    """Run the server with the grammar-first ``Llama`` (the server creates its model
    through ``llama_cpp.Llama``)."""
    llama_cpp.Llama = grammar_first_llama()  # type: ignore[misc]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
