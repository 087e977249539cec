"""Grammar-constrained sampling that costs what unconstrained sampling costs.

llama-cpp-python applies a reply's grammar to every token of the vocabulary before it
samples (151,936 candidates for Qwen2.5): about 30 ms per generated token on two CPU
cores, as long as the model itself takes to decode one. Only the few most likely
candidates can be sampled anyway, so the stage here checks the grammar on the top
``k`` candidates (by logit) and keeps those it allows; only when it allows none of
them is the grammar applied to the whole vocabulary. With greedy decoding the token
chosen is exactly the one the full check would choose (the best allowed token is among
the top ``k`` whenever any of them is allowed); with sampling, the candidates are the
allowed ones among the top ``k``, which the chain's own ``top_k`` (40) and ``top_p``
narrow further. llama.cpp's own server samples the same way (grammar check after
sampling, whole-vocabulary pass only on a rejected token).

The stage is a llama.cpp sampler (``llama_sampler_init`` with Python callbacks) placed
first in the chain llama-cpp-python builds, so the chain owns and frees it; it keeps
its own grammar state, advanced by ``accept`` with each sampled token.
"""

from __future__ import annotations

import ctypes
import functools
import math
from typing import Any

import numpy as np

from tracegrad.llm.errors import LLMCallError

#: Candidates checked against the grammar before the whole vocabulary is.
TOP_K = 40


class _GrammarStage:
    """One reply's grammar as a chain stage (see the module docstring)."""

    def __init__(self, llama_cpp: Any, vocab: Any, grammar: str, root: str, k: int = TOP_K) -> None:
        self._c = llama_cpp
        self._inner = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), root.encode("utf-8"))
        if not self._inner:
            raise LLMCallError("llama.cpp could not parse the grammar of the reply's schema", kind="bad_request")
        self._k = k
        self._buffer = (llama_cpp.llama_token_data * k)()
        self._top = np.ctypeslib.as_array(self._buffer)
        self._small = llama_cpp.llama_token_data_array(
            data=ctypes.cast(self._buffer, llama_cpp.llama_token_data_p), size=k, selected=-1, sorted=False
        )
        iface = llama_cpp.llama_sampler_i()
        # the callbacks must live as long as the sampler: they are kept on this object,
        # which the chain wrapper keeps (see grammar_first_llama)
        self._callbacks = (
            llama_cpp.llama_sampler_i_accept(lambda _s, token: llama_cpp.llama_sampler_accept(self._inner, token)),
            llama_cpp.llama_sampler_i_apply(lambda _s, cur_p: self._apply(cur_p)),
            llama_cpp.llama_sampler_i_reset(lambda _s: llama_cpp.llama_sampler_reset(self._inner)),
            llama_cpp.llama_sampler_i_free(lambda _s: self._free()),
        )
        iface.accept, iface.apply, iface.reset, iface.free = self._callbacks
        self._iface = iface
        self.sampler = llama_cpp.llama_sampler_init(ctypes.byref(iface), None)

    def _apply(self, cur_p: Any) -> None:
        try:
            if self._apply_to_likely(cur_p):
                return
        except Exception:  # never leave the candidates unchecked: the whole vocabulary then
            pass
        self._c.llama_sampler_apply(self._inner, cur_p)

    def _apply_to_likely(self, cur_p: Any) -> bool:
        """Keep the allowed ones among the top ``k`` candidates; False when none is."""
        array = cur_p.contents
        size = int(array.size)
        if size > self._k:
            candidates = np.ctypeslib.as_array(array.data, shape=(size,))
            best = np.argpartition(candidates["logit"], size - self._k)[size - self._k :]
            self._top[:] = candidates[best]
            self._small.size, self._small.selected, self._small.sorted = self._k, -1, False
            self._c.llama_sampler_apply(self._inner, ctypes.byref(self._small))
            allowed = self._top[self._top["logit"] != -math.inf]
            if len(allowed):
                candidates[: len(allowed)] = allowed
                array.size, array.selected, array.sorted = len(allowed), -1, False
                return True
        return False

    def _free(self) -> None:
        if self._inner:
            self._c.llama_sampler_free(self._inner)
            self._inner = None


@functools.cache
def grammar_first_llama() -> type:
    """A ``llama_cpp.Llama`` whose grammar-constrained sampling checks the likely
    candidates first (see the module docstring)."""
    import llama_cpp
    from llama_cpp import _internals

    class Llama(llama_cpp.Llama):  # type: ignore[misc]
        def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
            rest = super()._init_sampler(*args, grammar=None, **kwargs)
            if grammar is None or rest.custom_samplers:  # a logits processor: keep the library's order
                return super()._init_sampler(*args, grammar=grammar, **kwargs) if grammar is not None else rest
            stage = _GrammarStage(llama_cpp, self._model.vocab, grammar._grammar, grammar._root)
            chain = _internals.LlamaSampler()
            llama_cpp.llama_sampler_chain_add(chain.sampler, stage.sampler)
            llama_cpp.llama_sampler_chain_add(chain.sampler, rest.sampler)  # the chain now owns it
            rest.sampler = None
            chain.grammar_stage = stage  # its callbacks live as long as the chain
            return chain

    return Llama
