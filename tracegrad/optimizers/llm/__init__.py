"""The LLM optimizers: a model reads the trace (or the history) and proposes new values.

``OptoPrime`` shows the model the traced program, ``OPRO`` the history of values and
feedback, ``OptoPrimeMulti`` samples several OptoPrime proposals and keeps one; all are
``LLMOptimizer``s. Model calls go through ``tracegrad.llm.LLM``.
"""

from tracegrad.optimizers.llm.multi import OptoPrimeMulti
from tracegrad.optimizers.llm.opro import OPRO
from tracegrad.optimizers.llm.optimizer import LLMOptimizer
from tracegrad.optimizers.llm.optoprime import OptoPrime

__all__ = ["LLMOptimizer", "OPRO", "OptoPrime", "OptoPrimeMulti"]
