"""Benchmark problems written once for tracegrad and for the reference library.

``runner`` holds the problem types and the loop that runs a problem with either
library's adapter; ``problems`` the problems; ``reference`` the reference library's
side, run in its own environment.
"""

from opto_problems.problems import PROBLEMS, QUICK
from opto_problems.runner import Lib, Outcome, Problem, Spec, Task, run_problem, side_figures, summarize

__all__ = ["PROBLEMS", "QUICK", "Lib", "Outcome", "Problem", "Spec", "Task", "run_problem", "side_figures", "summarize"]
